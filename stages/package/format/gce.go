package format

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// gceUnit is the size GCE's image import wants disk.raw to be a multiple
// of: 1 GiB.
const gceUnit = 1 << 30

// gceFile is the one file a GCE image archive holds.
const gceFile = "disk.raw"

// gceTime is the modification time in the archive: 1980-01-01T00:00:00Z,
// the time stamped in the disk's file system.
var gceTime = time.Unix(315532800, 0).UTC()

// gce writes a gzip-compressed GNU tar holding disk.raw: the raw disk,
// padded with zeros to a whole number of GiB (its GPT, if any, moved to
// the new end). The tar stream is what archive/tar writes for that one
// file; its compression takes time in proportion to the disk's data, not
// its size: the disk is read in zeroChunk blocks (holes of the sparse
// padded copy are skipped without reading), blocks holding data go through
// compress/flate, and runs of zero blocks become deflate blocks of their
// own (zeroGzip). Which blocks are zero depends only on the disk's bytes,
// so the output is the same however the file system stores the copy.
func gce(ctx context.Context, w *writer) (int64, error) {
	padded, size, err := w.padRaw(gceUnit)
	if err != nil {
		return 0, err
	}
	defer os.Remove(padded)
	in, err := os.Open(padded)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(w.out)
	if err != nil {
		return 0, err
	}
	err = writeGCETar(ctx, out, in, size)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return size, err
}

// zeroChunk is the unit in which the disk is classified as zeros or data.
const zeroChunk = 64 << 10

// writeGCETar writes the archive of the size bytes of disk to out.
func writeGCETar(ctx context.Context, out io.Writer, disk *os.File, size int64) error {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     gceFile,
		Mode:     0o644,
		Size:     size,
		ModTime:  gceTime,
		Format:   tar.FormatGNU,
	}); err != nil {
		return err
	}
	z := newZeroGzip(out)
	if _, err := z.Write(hdr.Bytes()); err != nil {
		return err
	}
	buf := make([]byte, zeroChunk)
	var zeros int64 // a run of zero bytes not written yet
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Skip a hole: everything before the next data (rounded down to a
		// chunk) is zeros.
		next, err := seekData(disk, off, size)
		if err != nil {
			return err
		}
		if skip := next/zeroChunk*zeroChunk - off; skip > 0 {
			zeros += skip
			off += skip
			continue
		}
		n := int(min(int64(len(buf)), size-off))
		if _, err := disk.ReadAt(buf[:n], off); err != nil {
			return err
		}
		off += int64(n)
		if isZero(buf[:n]) {
			zeros += int64(n)
			continue
		}
		if err := z.Zeros(zeros); err != nil {
			return err
		}
		zeros = 0
		if _, err := z.Write(buf[:n]); err != nil {
			return err
		}
	}
	if err := z.Zeros(zeros); err != nil {
		return err
	}
	// The end of the archive: two zero blocks, as tar.Writer.Close writes.
	if _, err := z.Write(make([]byte, 2*512)); err != nil {
		return err
	}
	return z.Close()
}

// seekData is the offset of the first byte at or after off that may hold
// data (SEEK_DATA), or end when the rest is a hole; off itself where the
// file system cannot tell.
func seekData(f *os.File, off, end int64) (int64, error) {
	next, err := f.Seek(off, seekDataWhence)
	switch {
	case errors.Is(err, syscall.ENXIO):
		return end, nil
	case err != nil:
		return off, nil
	}
	return min(next, end), nil
}

// seekDataWhence is lseek's SEEK_DATA.
const seekDataWhence = 3

func isZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:k], zeroPage[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

// padRaw copies the raw disk into a sparse temporary file whose size is a
// multiple of unit, moving a GPT's backup header and entries to the new
// last sectors; it returns the copy and its size.
func (w *writer) padRaw(unit int64) (string, int64, error) {
	src, err := os.Open(w.raw)
	if err != nil {
		return "", 0, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return "", 0, err
	}
	size := (fi.Size() + unit - 1) / unit * unit
	tmp, err := os.CreateTemp(w.work, ".padded-*.raw")
	if err != nil {
		return "", 0, err
	}
	name := tmp.Name()
	fail := func(err error) (string, int64, error) {
		tmp.Close()
		os.Remove(name)
		return "", 0, err
	}
	if _, err := io.Copy(tmp, src); err != nil {
		return fail(err)
	}
	if err := tmp.Truncate(size); err != nil {
		return fail(err)
	}
	if size != fi.Size() {
		if err := moveGPT(tmp, fi.Size(), size); err != nil {
			return fail(fmt.Errorf("move the GPT to the end of the padded disk: %w", err))
		}
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return "", 0, err
	}
	return filepath.Clean(name), size, nil
}

const sector = 512

// moveGPT rewrites a GPT disk that grew from oldSize to newSize: the
// primary header points to a backup header and entries written at the
// new end, the old backup is zeroed, and the protective MBR covers the
// whole disk. A disk without a GPT is left alone.
func moveGPT(f *os.File, oldSize, newSize int64) error {
	hdr := make([]byte, sector)
	if _, err := f.ReadAt(hdr, sector); err != nil {
		return err
	}
	if string(hdr[:8]) != "EFI PART" {
		return nil
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < 92 || hsize > sector {
		return fmt.Errorf("GPT header size %d", hsize)
	}
	if oldSize < 0 || newSize < oldSize {
		return fmt.Errorf("GPT disk from %d to %d bytes", oldSize, newSize)
	}
	entriesLBA := binary.LittleEndian.Uint64(hdr[72:])
	n := int64(binary.LittleEndian.Uint32(hdr[80:]))
	esize := int64(binary.LittleEndian.Uint32(hdr[84:]))
	// The specification: entries of 128 bytes or a multiple of 8 above;
	// a real table is 16 KiB, 1 MiB is ample.
	if esize < 128 || esize%8 != 0 || n == 0 || n*esize > 1<<20 {
		return fmt.Errorf("GPT with %d entries of %d bytes", n, esize)
	}
	if entriesLBA < 2 || entriesLBA > uint64(oldSize/sector) {
		return fmt.Errorf("GPT entries at LBA %d of a %d-byte disk", entriesLBA, oldSize)
	}
	entries := make([]byte, n*esize)
	if _, err := f.ReadAt(entries, int64(entriesLBA)*sector); err != nil {
		return err
	}
	entrySectors := (int64(len(entries)) + sector - 1) / sector
	oldLast, newLast := oldSize/sector-1, newSize/sector-1
	if lastUsable := int64(binary.LittleEndian.Uint64(hdr[48:])); lastUsable >= oldLast-entrySectors {
		return errors.New("the partitions reach into the backup GPT")
	}
	// Zero the old backup (entries and header).
	if _, err := f.WriteAt(make([]byte, (entrySectors+1)*sector), (oldLast-entrySectors)*sector); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(hdr[32:], uint64(newLast)) // AlternateLBA
	setHeaderCRC(hdr[:hsize])
	if _, err := f.WriteAt(hdr, sector); err != nil {
		return err
	}
	backup := append([]byte(nil), hdr...)
	binary.LittleEndian.PutUint64(backup[24:], uint64(newLast))              // MyLBA
	binary.LittleEndian.PutUint64(backup[32:], 1)                            // AlternateLBA
	binary.LittleEndian.PutUint64(backup[72:], uint64(newLast-entrySectors)) // PartitionEntryLBA
	setHeaderCRC(backup[:hsize])
	if _, err := f.WriteAt(entries, (newLast-entrySectors)*sector); err != nil {
		return err
	}
	if _, err := f.WriteAt(backup, newLast*sector); err != nil {
		return err
	}
	// The protective MBR's one partition spans the disk after LBA 0.
	count := uint32(0xffffffff)
	if newLast < int64(count) {
		count = uint32(newLast)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], count)
	_, err := f.WriteAt(b[:], 446+12)
	return err
}

func setHeaderCRC(h []byte) {
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
}

package format

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
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
// the new end).
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
	bw := bufio.NewWriterSize(out, 1<<20)
	// No name and no time in the gzip header: the same bytes every time.
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		out.Close()
		return 0, err
	}
	tw := tar.NewWriter(zw)
	err = tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     gceFile,
		Mode:     0o644,
		Size:     size,
		ModTime:  gceTime,
		Format:   tar.FormatGNU,
	})
	if err == nil {
		_, err = io.Copy(tw, &ctxReader{ctx: ctx, r: in})
	}
	for _, c := range []func() error{tw.Close, zw.Close, bw.Flush, out.Sync} {
		if err == nil {
			err = c()
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return size, err
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

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

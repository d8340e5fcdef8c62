package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
)

func qcow2(ctx context.Context, w *writer) (int64, error) {
	// qcow2 carries no times or random identifiers.
	if err := w.convert(ctx, "qcow2", "compat=1.1"); err != nil {
		return 0, err
	}
	return w.rawSize()
}

func vmdkStream(ctx context.Context, w *writer) (int64, error) {
	return w.vmdk(ctx, "streamOptimized")
}

func vmdkSparse(ctx context.Context, w *writer) (int64, error) {
	return w.vmdk(ctx, "monolithicSparse")
}

// vmdk writes a single-file VMDK and replaces the random content ID (CID)
// in its embedded descriptor. The descriptor also names the file itself
// (the extent), so the file name is fixed (disk.vmdk).
func (w *writer) vmdk(ctx context.Context, subformat string) (int64, error) {
	if err := w.convert(ctx, "vmdk", "subformat="+subformat); err != nil {
		return 0, err
	}
	cid := hex.EncodeToString(w.derive("vmdk cid")[:4])
	if err := patchVMDKDescriptor(w.out, cid); err != nil {
		return 0, fmt.Errorf("%s: %w", w.out, err)
	}
	return w.rawSize()
}

var cidLine = regexp.MustCompile(`(?m)^CID=[0-9a-fA-F]+$`)

// patchVMDKDescriptor sets CID in the descriptor embedded in a VMDK's
// sparse extent (its location is in the header: descriptorOffset and
// descriptorSize, in sectors); the rest of the area stays NUL.
func patchVMDKDescriptor(path, cid string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := make([]byte, 512)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return err
	}
	if string(hdr[:4]) != "KDMV" {
		return fmt.Errorf("not a sparse VMDK extent (magic %q)", hdr[:4])
	}
	offSectors, sizeSectors := binary.LittleEndian.Uint64(hdr[28:]), binary.LittleEndian.Uint64(hdr[36:])
	if offSectors == 0 || sizeSectors == 0 || sizeSectors > (1<<20)/512 || offSectors > (1<<62)/512 {
		return fmt.Errorf("no embedded descriptor (offset %d, size %d sectors)", offSectors, sizeSectors)
	}
	off, size := int64(offSectors)*512, int64(sizeSectors)*512
	area := make([]byte, size)
	if _, err := f.ReadAt(area, off); err != nil {
		return err
	}
	text := area
	if i := bytes.IndexByte(area, 0); i >= 0 {
		text = area[:i]
	}
	if !cidLine.Match(text) {
		return fmt.Errorf("the descriptor has no CID line")
	}
	text = cidLine.ReplaceAll(text, []byte("CID="+cid))
	if int64(len(text)) > size {
		return fmt.Errorf("the descriptor outgrew its %d bytes", size)
	}
	out := make([]byte, size)
	copy(out, text)
	_, err = f.WriteAt(out, off)
	return err
}

// vdi writes a dynamic VDI and replaces its two random UUIDs (the image's
// and its last snapshot's).
func vdi(ctx context.Context, w *writer) (int64, error) {
	if err := w.convert(ctx, "vdi", ""); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(w.out, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := patchVDIHeader(f, uuid(w.derive("vdi image")), uuid(w.derive("vdi snapshot"))); err != nil {
		return 0, fmt.Errorf("%s: %w", w.out, err)
	}
	return w.rawSize()
}

// patchVDIHeader sets the image and last snapshot UUIDs of a VDI 1.1 file.
// The header follows 64 bytes of text: signature at 64, version at 68,
// ..., the image UUID at 392 and the last snapshot's at 408.
func patchVDIHeader(f io.ReaderAt, image, snapshot []byte) error {
	hdr := make([]byte, 512)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("not a VDI image: %w", err)
	}
	if binary.LittleEndian.Uint32(hdr[64:]) != 0xbeda107f || binary.LittleEndian.Uint32(hdr[68:]) != 0x00010001 {
		return errors.New("not a VDI 1.1 image")
	}
	copy(hdr[392:408], image)
	copy(hdr[408:424], snapshot)
	w, ok := f.(io.WriterAt)
	if !ok {
		return errors.New("not writable")
	}
	_, err := w.WriteAt(hdr, 0)
	return err
}

// uuid sets the version (4) and variant bits of 16 bytes.
func uuid(b []byte) []byte {
	u := append([]byte(nil), b[:16]...)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// vhdFixed writes a fixed VHD: the raw disk followed by a 512-byte footer
// that records the exact size (force_size: Azure wants the virtual size
// to be a whole number of MiB, and the raw disk is). qemu-img stamps the
// footer with the time and a random UUID; both are replaced and the
// footer's checksum recomputed.
func vhdFixed(ctx context.Context, w *writer) (int64, error) {
	size, err := w.rawSize()
	if err != nil {
		return 0, err
	}
	if size%(1<<20) != 0 {
		return 0, fmt.Errorf("the raw disk is %d bytes, not a whole number of MiB", size)
	}
	if err := w.convert(ctx, "vpc", "subformat=fixed,force_size=on"); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(w.out, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() != size+512 {
		return 0, fmt.Errorf("%s is %d bytes, want the raw disk's %d plus a 512-byte footer", w.out, fi.Size(), size)
	}
	if err := patchVHDFooter(f, size, uuid(w.derive("vhd"))); err != nil {
		return 0, fmt.Errorf("%s: %w", w.out, err)
	}
	return size, nil
}

// patchVHDFooter sets the time stamp (to 2000-01-01T00:00:00Z, zero) and
// the UUID of the VHD footer at off, and its checksum.
func patchVHDFooter(f interface {
	io.ReaderAt
	io.WriterAt
}, off int64, id []byte) error {
	footer := make([]byte, 512)
	if _, err := f.ReadAt(footer, off); err != nil {
		return fmt.Errorf("no VHD footer: %w", err)
	}
	if string(footer[:8]) != "conectix" {
		return errors.New("no VHD footer")
	}
	binary.BigEndian.PutUint32(footer[24:], 0)
	copy(footer[68:84], id)
	binary.BigEndian.PutUint32(footer[64:], vhdChecksum(footer))
	_, err := f.WriteAt(footer, off)
	return err
}

// vhdChecksum is the one's complement of the sum of the footer's bytes,
// the checksum field excluded.
func vhdChecksum(footer []byte) uint32 {
	var sum uint32
	for i, b := range footer {
		if i >= 64 && i < 68 {
			continue
		}
		sum += uint32(b)
	}
	return ^sum
}

package vsphere

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A streamOptimized VMDK (VMware's Virtual Disk Format specification,
// "Stream-Optimized Compressed Sparse Extents") is one sparse extent: a
// 512-byte header, the embedded descriptor, then grains of data, each
// compressed with DEFLATE and preceded by its logical sector and length,
// with the grain tables and the grain directory as marked metadata, and,
// when the directory's place was not known when the header was written, a
// footer (a copy of the header with the real directory offset) just
// before the end-of-stream marker. streamReader turns one back into the
// disk's plain bytes, which is what a flat extent on a datastore holds.

const (
	sectorSize   = 512
	sparseMagic  = 0x564d444b // "KDMV" little-endian
	flagZeroGTE  = 1 << 2     // a grain table entry of 1 means a zeroed grain
	flagCompress = 1 << 16
	gdAtEnd      = 0xffffffffffffffff
	maxGrainSize = 1 << 14 // sectors (8 MiB): far above the 128 every writer uses
)

// sparseHeader is the fields of SparseExtentHeader that reading needs.
type sparseHeader struct {
	Version      uint32
	Flags        uint32
	Capacity     uint64 // sectors
	GrainSize    uint64 // sectors
	NumGTEsPerGT uint32
	GDOffset     uint64 // sectors
	Compress     uint16
}

func parseSparseHeader(b []byte) (sparseHeader, error) {
	var h sparseHeader
	if len(b) < sectorSize {
		return h, errors.New("short header")
	}
	if m := binary.LittleEndian.Uint32(b[0:]); m != sparseMagic {
		return h, fmt.Errorf("not a sparse VMDK extent (magic %#x)", m)
	}
	h.Version = binary.LittleEndian.Uint32(b[4:])
	h.Flags = binary.LittleEndian.Uint32(b[8:])
	h.Capacity = binary.LittleEndian.Uint64(b[12:])
	h.GrainSize = binary.LittleEndian.Uint64(b[20:])
	h.NumGTEsPerGT = binary.LittleEndian.Uint32(b[44:])
	h.GDOffset = binary.LittleEndian.Uint64(b[56:])
	h.Compress = binary.LittleEndian.Uint16(b[77:])
	return h, nil
}

// streamReader reads the plain disk bytes of a streamOptimized VMDK, in
// order, grain by grain; unallocated grains read as zeros.
type streamReader struct {
	f    io.ReaderAt
	h    sparseHeader
	gtes []uint32 // sector of each grain's marker, 0 for none

	grain int    // the next grain to decode
	buf   []byte // the rest of the current grain
	zero  []byte
	comp  []byte
	left  int64 // bytes still to return
}

// newStreamReader checks the extent's header (and footer) and reads its
// grain directory and tables. size is the file's size.
func newStreamReader(f io.ReaderAt, size int64) (*streamReader, error) {
	hb := make([]byte, sectorSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("read VMDK header: %w", err)
	}
	h, err := parseSparseHeader(hb)
	if err != nil {
		return nil, err
	}
	if h.Flags&flagCompress == 0 || h.Compress != 1 {
		return nil, errors.New("not a streamOptimized VMDK (its grains are not DEFLATE-compressed); rebuild the image with format = \"vmdk\"")
	}
	if h.GDOffset == gdAtEnd {
		// The footer is the second-to-last sector: footer marker, footer,
		// end-of-stream marker.
		if size < 3*sectorSize {
			return nil, errors.New("VMDK too short for its footer")
		}
		if _, err := f.ReadAt(hb, size-2*sectorSize); err != nil {
			return nil, fmt.Errorf("read VMDK footer: %w", err)
		}
		foot, err := parseSparseHeader(hb)
		if err != nil {
			return nil, fmt.Errorf("VMDK footer: %w", err)
		}
		h.GDOffset = foot.GDOffset
	}
	if h.GrainSize == 0 || h.GrainSize > maxGrainSize || h.GrainSize&(h.GrainSize-1) != 0 {
		return nil, fmt.Errorf("VMDK grain size %d sectors is not a power of two up to %d", h.GrainSize, maxGrainSize)
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > 1<<16 {
		return nil, fmt.Errorf("VMDK has %d grain table entries per table", h.NumGTEsPerGT)
	}
	if h.Capacity == 0 || h.Capacity > 1<<40 {
		return nil, fmt.Errorf("VMDK capacity %d sectors is out of range", h.Capacity)
	}
	grains := (h.Capacity + h.GrainSize - 1) / h.GrainSize
	tables := (grains + uint64(h.NumGTEsPerGT) - 1) / uint64(h.NumGTEsPerGT)
	if h.GDOffset == 0 || int64(h.GDOffset)*sectorSize+int64(tables)*4 > size {
		return nil, fmt.Errorf("VMDK grain directory at sector %d lies outside the %d-byte file", h.GDOffset, size)
	}
	gd := make([]byte, tables*4)
	if _, err := f.ReadAt(gd, int64(h.GDOffset)*sectorSize); err != nil {
		return nil, fmt.Errorf("read VMDK grain directory: %w", err)
	}
	r := &streamReader{f: f, h: h, gtes: make([]uint32, grains), left: int64(h.Capacity) * sectorSize}
	gt := make([]byte, h.NumGTEsPerGT*4)
	for t := range tables {
		off := binary.LittleEndian.Uint32(gd[t*4:])
		if off == 0 {
			continue // a table of unallocated grains
		}
		if int64(off)*sectorSize+int64(len(gt)) > size {
			return nil, fmt.Errorf("VMDK grain table %d at sector %d lies outside the file", t, off)
		}
		if _, err := f.ReadAt(gt, int64(off)*sectorSize); err != nil {
			return nil, fmt.Errorf("read VMDK grain table %d: %w", t, err)
		}
		for i := range uint64(h.NumGTEsPerGT) {
			g := t*uint64(h.NumGTEsPerGT) + i
			if g >= grains {
				break
			}
			r.gtes[g] = binary.LittleEndian.Uint32(gt[i*4:])
		}
	}
	r.zero = make([]byte, h.GrainSize*sectorSize)
	return r, nil
}

// Size is the disk's size in bytes.
func (r *streamReader) Size() int64 { return int64(r.h.Capacity) * sectorSize }

func (r *streamReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if len(r.buf) == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	if int64(n) > r.left {
		n = int(r.left)
	}
	r.buf = r.buf[n:]
	r.left -= int64(n)
	return n, nil
}

// next decodes grain r.grain into r.buf.
func (r *streamReader) next() error {
	g := r.grain
	r.grain++
	grainBytes := int(r.h.GrainSize * sectorSize)
	off := r.gtes[g]
	if off == 0 || off == 1 && r.h.Flags&flagZeroGTE != 0 { // never written, or written as zeros
		r.buf = r.zero
		return nil
	}
	var m [12]byte
	if _, err := r.f.ReadAt(m[:], int64(off)*sectorSize); err != nil {
		return fmt.Errorf("VMDK grain %d: %w", g, err)
	}
	lba := binary.LittleEndian.Uint64(m[0:])
	n := binary.LittleEndian.Uint32(m[8:])
	if lba != uint64(g)*r.h.GrainSize {
		return fmt.Errorf("VMDK grain %d: its marker says sector %d, its table entry sector %d", g, lba, uint64(g)*r.h.GrainSize)
	}
	if n == 0 || int(n) > 2*grainBytes+1024 {
		return fmt.Errorf("VMDK grain %d: compressed length %d out of range", g, n)
	}
	if cap(r.comp) < int(n) {
		r.comp = make([]byte, n)
	}
	comp := r.comp[:n]
	if _, err := r.f.ReadAt(comp, int64(off)*sectorSize+12); err != nil {
		return fmt.Errorf("VMDK grain %d: %w", g, err)
	}
	out, err := inflate(comp, grainBytes)
	if err != nil {
		return fmt.Errorf("VMDK grain %d: %w", g, err)
	}
	if len(out) < grainBytes {
		// The last grain of a disk whose size is not a whole number of
		// grains may be shorter; the rest is zeros.
		out = append(out, r.zero[:grainBytes-len(out)]...)
	}
	r.buf = out
	return nil
}

// inflate decompresses one grain: zlib-wrapped DEFLATE as the writers
// produce it, or bare DEFLATE.
func inflate(comp []byte, max int) ([]byte, error) {
	var src io.ReadCloser
	if zr, err := zlib.NewReader(bytes.NewReader(comp)); err == nil {
		src = zr
	} else {
		src = flate.NewReader(bytes.NewReader(comp))
	}
	defer src.Close()
	out := make([]byte, 0, max)
	b := bytes.NewBuffer(out)
	if _, err := io.Copy(b, io.LimitReader(src, int64(max)+1)); err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if b.Len() > max {
		return nil, fmt.Errorf("decompresses to more than a grain (%d bytes)", max)
	}
	return b.Bytes(), nil
}

package includeos

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testELF is a minimal ELF64 executable: loadable segments with their
// bytes, and one allocated section (.multiboot) so that the header's room
// can be checked.
type testELF struct {
	entry uint64
	segs  []testSeg
	// mbAddr and mbSize are the .multiboot section (0 size: no sections).
	mbAddr, mbSize uint64
}

type testSeg struct {
	paddr uint64
	data  []byte
	memsz uint64 // 0 means len(data)
}

// bytes lays the ELF out: header, program headers, each segment's data at
// a file offset that is its paddr modulo 4 KiB past the previous, then the
// section headers and their string table.
func (e testELF) bytes() []byte {
	le := binary.LittleEndian
	const ehsize, phsize, shsize = 64, 56, 64
	var file bytes.Buffer
	file.Write(make([]byte, ehsize+phsize*len(e.segs)))
	offs := make([]uint64, len(e.segs))
	for i, s := range e.segs {
		for uint64(file.Len())%4096 != s.paddr%4096 {
			file.WriteByte(0)
		}
		offs[i] = uint64(file.Len())
		file.Write(s.data)
	}
	strtab := []byte("\x00.multiboot\x00.shstrtab\x00")
	strOff := uint64(file.Len())
	file.Write(strtab)
	for file.Len()%8 != 0 {
		file.WriteByte(0)
	}
	shoff := uint64(file.Len())
	nsec := 0
	if e.mbSize > 0 {
		sh := make([]byte, shsize*3)
		// [1] .multiboot, PROGBITS, ALLOC
		le.PutUint32(sh[shsize+0:], 1)
		le.PutUint32(sh[shsize+4:], 1)
		le.PutUint64(sh[shsize+8:], 2)
		le.PutUint64(sh[shsize+16:], e.mbAddr)
		le.PutUint64(sh[shsize+24:], offs[0]+e.mbAddr-e.segs[0].paddr)
		le.PutUint64(sh[shsize+32:], e.mbSize)
		// [2] .shstrtab
		le.PutUint32(sh[2*shsize+0:], 12)
		le.PutUint32(sh[2*shsize+4:], 3)
		le.PutUint64(sh[2*shsize+24:], strOff)
		le.PutUint64(sh[2*shsize+32:], uint64(len(strtab)))
		file.Write(sh)
		nsec = 3
	}
	b := file.Bytes()
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], e.entry)
	le.PutUint64(b[32:], ehsize)
	if nsec > 0 {
		le.PutUint64(b[40:], shoff)
	}
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], uint16(len(e.segs)))
	le.PutUint16(b[58:], shsize)
	le.PutUint16(b[60:], uint16(nsec))
	if nsec > 0 {
		le.PutUint16(b[62:], 2)
	}
	for i, s := range e.segs {
		ph := b[ehsize+phsize*i:]
		memsz := s.memsz
		if memsz == 0 {
			memsz = uint64(len(s.data))
		}
		le.PutUint32(ph[0:], 1) // PT_LOAD
		le.PutUint32(ph[4:], 7)
		le.PutUint64(ph[8:], offs[i])
		le.PutUint64(ph[16:], s.paddr)
		le.PutUint64(ph[24:], s.paddr)
		le.PutUint64(ph[32:], uint64(len(s.data)))
		le.PutUint64(ph[40:], memsz)
		le.PutUint64(ph[48:], 4096)
	}
	return b
}

// mbHeader is a multiboot header without address fields (flags 3, as
// IncludeOS links it), padded with pad bytes.
func mbHeader(flags uint32, pad []byte) []byte {
	h := make([]byte, 12)
	binary.LittleEndian.PutUint32(h, Magic)
	binary.LittleEndian.PutUint32(h[4:], flags)
	binary.LittleEndian.PutUint32(h[8:], -(Magic + flags))
	return append(h, pad...)
}

func writeELF(t *testing.T, e testELF) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "service.elf.bin")
	if err := os.WriteFile(p, e.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A 64-bit multiboot ELF as IncludeOS links it (its header at 0x200100 in
// a 40-byte .multiboot section; text, then data with .bss) becomes one
// image from its lowest segment, with the header's address fields set as
// the specification says and a checksum that sums to zero; the bytes
// between segments are zero.
func TestMakeKernel(t *testing.T) {
	head := append(make([]byte, 0x100), mbHeader(3, bytes.Repeat([]byte{0xee}, 28))...)
	text := bytes.Repeat([]byte{0x90}, 0x1800)
	data := []byte("data!")
	e := testELF{
		entry: 0x201010,
		segs: []testSeg{
			{paddr: 0x200000, data: head},
			{paddr: 0x201000, data: text},
			{paddr: 0x204000, data: data, memsz: 0x3000},
		},
		mbAddr: 0x200100, mbSize: 40,
	}
	k, err := MakeKernel(writeELF(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if want := 0x204000 + len(data) - 0x200000; len(k.Image) != want {
		t.Fatalf("image is %#x bytes, want %#x (up to the end of the last segment's file data)", len(k.Image), want)
	}
	h, err := FindHeader(k.Image)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Offset: 0x100, Flags: 3 | AddressFlag, HeaderAddr: 0x200100, LoadAddr: 0x200000, LoadEndAddr: 0x204005, BSSEndAddr: 0x207000, EntryAddr: 0x201010}
	if *h != want {
		t.Errorf("header %+v, want %+v", *h, want)
	}
	if !bytes.Equal(k.Image[0x1000:0x2800], text) || !bytes.Equal(k.Image[0x4000:], data) {
		t.Error("segments are not at their physical addresses")
	}
	if !bytes.Equal(k.Image[0x2800:0x4000], make([]byte, 0x1800)) || !bytes.Equal(k.Image[0x12c:0x1000], make([]byte, 0x1000-0x12c)) {
		t.Error("the gaps between segments are not zero")
	}
	// What a loader checks: the header lies in the first 8 KiB, load_addr
	// <= header_addr, and the file offset of load_addr is 0.
	if off := int(h.HeaderAddr-h.LoadAddr) - h.Offset; off != 0 {
		t.Errorf("load_addr maps to file offset %d", off)
	}
	// The same ELF gives the same bytes.
	k2, _ := MakeKernel(writeELF(t, e))
	if !bytes.Equal(k.Image, k2.Image) {
		t.Error("two runs differ")
	}
}

func TestMakeKernelRefuses(t *testing.T) {
	ok := func() testELF {
		return testELF{
			entry:  0x200020,
			segs:   []testSeg{{paddr: 0x200000, data: append(make([]byte, 0x10), mbHeader(3, make([]byte, 40))...)}},
			mbAddr: 0x200010, mbSize: 32,
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*testELF)
		want string
	}{
		{"no header", func(e *testELF) { e.segs[0].data = make([]byte, 64) }, "not a multiboot kernel"},
		{"bad checksum", func(e *testELF) { e.segs[0].data[0x18]++ }, "not a multiboot kernel"},
		{"no room", func(e *testELF) { e.mbSize = 12 }, "no room for the address fields"},
		{"no sections", func(e *testELF) { e.mbSize = 0 }, "no section holds its multiboot header"},
		{"entry outside", func(e *testELF) { e.entry = 0x100000 }, "entry point 0x100000 is outside"},
		{"above 4 GiB", func(e *testELF) {
			e.segs = append(e.segs, testSeg{paddr: 0xffff_f000, data: []byte{1}, memsz: 0x2000})
		}, "above 4 GiB"},
		{"overlap", func(e *testELF) {
			e.segs = append(e.segs, testSeg{paddr: 0x200020, data: []byte{1}})
		}, "overlap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ok()
			tc.edit(&e)
			_, err := MakeKernel(writeELF(t, e))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := MakeKernel(writeELF(t, ok())); err != nil {
		t.Fatalf("the unedited ELF: %v", err)
	}
	p := filepath.Join(t.TempDir(), "x")
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644)
	if _, err := MakeKernel(p); err == nil || !strings.Contains(err.Error(), "not an ELF file") {
		t.Fatalf("a script: %v", err)
	}
}

// A header that already sets the address fields is kept as it is, but the
// addresses are the ELF's.
func TestMakeKernelKeepsAddressHeaders(t *testing.T) {
	e := testELF{
		entry: 0x200020,
		segs:  []testSeg{{paddr: 0x200000, data: append(make([]byte, 0x10), mbHeader(3|AddressFlag, make([]byte, 20))...), memsz: 0x100}},
	}
	k, err := MakeKernel(writeELF(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if k.LoadAddr != 0x200000 || k.BSSEndAddr != 0x200100 || k.HeaderAddr != 0x200010 {
		t.Errorf("header %+v", k.Header)
	}
}

package kbuild

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// testSegment is a segment of the ELF writeTestELF makes.
type testSegment struct {
	typ   elf.ProgType
	flags elf.ProgFlag
	paddr uint64
	data  []byte
	memsz uint64
}

// writeTestELF writes a vmlinux-like ELF: the segments at 2 MiB-aligned
// file offsets, as the kernel's linker script places them, and a section
// header table (of one null section) after them.
func writeTestELF(t *testing.T, path string, segs []testSegment) {
	t.Helper()
	le := binary.LittleEndian
	const align = 2 << 20
	var out []byte
	off := uint64(align)
	offs := make([]uint64, len(segs))
	for i, s := range segs {
		if s.typ == elf.PT_NOTE {
			continue
		}
		offs[i] = off
		off = alignUp(off+uint64(len(s.data)), align)
	}
	for i, s := range segs {
		if s.typ == elf.PT_NOTE {
			offs[i] = off
			off += uint64(len(s.data))
		}
	}
	shoff := alignUp(off, 8)
	out = make([]byte, shoff+64)
	copy(out, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(out[16:], uint16(elf.ET_EXEC))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[24:], 0x1000000)
	le.PutUint64(out[32:], 64)
	le.PutUint64(out[40:], shoff)
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], uint16(len(segs)))
	le.PutUint16(out[58:], 64)
	le.PutUint16(out[60:], 1)
	for i, s := range segs {
		b := out[64+56*i:]
		le.PutUint32(b[0:], uint32(s.typ))
		le.PutUint32(b[4:], uint32(s.flags))
		le.PutUint64(b[8:], offs[i])
		le.PutUint64(b[16:], 0xffffffff80000000+s.paddr)
		le.PutUint64(b[24:], s.paddr)
		le.PutUint64(b[32:], uint64(len(s.data)))
		le.PutUint64(b[40:], s.memsz)
		le.PutUint64(b[48:], align)
		copy(out[offs[i]:], s.data)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// memoryOf is guest memory as an ELF loader leaves it: each PT_LOAD's
// file bytes at its physical address, zeros up to p_memsz; untouched
// bytes are 0xee, so that a hole the compacted file leaves shows.
func memoryOf(t *testing.T, path string, size int) []byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem := bytes.Repeat([]byte{0xee}, size)
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		b := make([]byte, p.Memsz)
		if _, err := p.ReadAt(b[:p.Filesz], 0); err != nil {
			t.Fatal(err)
		}
		copy(mem[p.Paddr:], b)
	}
	return mem
}

func filled(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

func TestCompactVMLinuxKeepsWhatTheLoaderWrites(t *testing.T) {
	dir := t.TempDir()
	// Text: code, 3 pages of int3 padding, code ending mid-page, then
	// zero padding; data: contents, 2 zero pages, contents, then .bss.
	text := append(append(append(filled(5000, 0x90), filled(3*pageSize+(pageSize-5000%pageSize), 0xcc)...), filled(100, 0x91)...), make([]byte, 2*pageSize)...)
	data := append(append(filled(pageSize, 0x42), make([]byte, 2*pageSize)...), filled(10, 0x43)...)
	note := []byte("\x04\x00\x00\x00\x08\x00\x00\x00\x12\x00\x00\x00Xen\x00\x00\x00\x00\x01\x00\x00\x00\x00")
	segs := []testSegment{
		{elf.PT_LOAD, elf.PF_R | elf.PF_X, 0x1000000, text, uint64(len(text))},
		{elf.PT_LOAD, elf.PF_R | elf.PF_W, 0x1800000, data, uint64(len(data)) + 5*pageSize},
		{elf.PT_NOTE, elf.PF_R, 0x1000000 + 200, note, uint64(len(note))},
	}
	src, dst := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "vmlinux.compact")
	writeTestELF(t, src, segs)
	if err := compactVMLinux(src, dst); err != nil {
		t.Fatal(err)
	}
	si, _ := os.Stat(src)
	di, _ := os.Stat(dst)
	if di.Size() >= si.Size() || di.Size() > 8*pageSize {
		t.Errorf("compacted file is %d bytes (from %d); want the fill left out (at most %d)", di.Size(), si.Size(), 8*pageSize)
	}

	const size = 0x1900000
	want := memoryOf(t, src, size)
	// The int3 padding of whole pages becomes zeros.
	for i := 0; i < len(text); i += pageSize {
		if end := i + pageSize; end <= len(text) && bytes.Equal(text[i:end], filled(pageSize, 0xcc)) {
			copy(want[0x1000000+i:], make([]byte, pageSize))
		}
	}
	if got := memoryOf(t, dst, size); !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("memory differs first at %#x: %#x, want %#x", i, got[i], want[i])
			}
		}
	}

	f, err := elf.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Entry != 0x1000000 || f.Machine != elf.EM_X86_64 || len(f.Sections) != 0 {
		t.Errorf("entry %#x, machine %v, %d sections; want the same entry and machine, no sections", f.Entry, f.Machine, len(f.Sections))
	}
	var gotNote []byte
	for _, p := range f.Progs {
		if p.Off%pageSize != p.Vaddr%pageSize && p.Type == elf.PT_LOAD {
			t.Errorf("segment at %#x: offset %#x and address not congruent modulo the page size", p.Paddr, p.Off)
		}
		if p.Type == elf.PT_NOTE {
			gotNote = make([]byte, p.Filesz)
			p.ReadAt(gotNote, 0)
			if p.Paddr != segs[2].paddr {
				t.Errorf("note at %#x, want %#x", p.Paddr, segs[2].paddr)
			}
		}
	}
	if !bytes.Equal(gotNote, note) {
		t.Errorf("PT_NOTE = %q, want %q", gotNote, note)
	}
}

func TestCompactVMLinuxNeedsANote(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vmlinux")
	writeTestELF(t, src, []testSegment{{elf.PT_LOAD, elf.PF_R | elf.PF_X, 0x1000000, filled(100, 0x90), 100}})
	if err := compactVMLinux(src, filepath.Join(dir, "out")); err == nil {
		t.Error("a vmlinux without PT_NOTE was compacted; want an error (QEMU finds the PVH entry there)")
	}
}

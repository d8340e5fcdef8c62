package kbuild

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
)

// A PVH vmlinux is booted by reading its ELF program headers alone:
// QEMU copies each PT_LOAD segment's file bytes to its physical address
// (zero-filling up to p_memsz) and finds the 32-bit entry point in a
// PT_NOTE (XEN_ELFNOTE_PHYS32_ENTRY); section headers and symbols are
// not read. The linker's vmlinux is much bigger than what it holds: on
// x86-64 with STRICT_KERNEL_RWX (not optional there) the entry text and
// the start of .rodata and .data are aligned to 2 MiB, and the gaps are
// filled with int3 (0xcc) inside .text and zeros elsewhere, several MiB
// of a 10 MiB image; and the segments sit at 2 MiB-aligned file offsets.
//
// compactVMLinux writes src as an ELF of program headers only, with each
// PT_LOAD split into pieces that leave out of the file its whole pages
// of fill (all zero, or all 0xcc in an executable segment), which the
// pieces' p_memsz covers instead (the loader zero-fills it), packed at
// page-aligned offsets, and the PT_NOTE segments copied. What the guest
// sees differs only in the int3 padding between text sections, zero now,
// which is never executed (the kernel frees and poisons the gaps after
// .text and .rodata itself).
func compactVMLinux(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return fmt.Errorf("%s: not a little-endian 64-bit ELF", src)
	}
	type piece struct {
		prog elf.ProgHeader
		data []byte
	}
	var pieces []piece
	var notes int
	for _, p := range f.Progs {
		if p.Off+p.Filesz > uint64(len(data)) {
			return fmt.Errorf("%s: a segment ends past the file", src)
		}
		seg := data[p.Off : p.Off+p.Filesz]
		switch p.Type {
		case elf.PT_LOAD:
			// Each piece's memory runs to the next piece's start (the
			// last one's to the segment's end): the loader zero-fills
			// the fill pages left out of the file, so every byte of the
			// segment's memory is still written on each (re)boot.
			runs := contentRuns(seg, p.Flags&elf.PF_X != 0)
			if len(runs) == 0 {
				runs = [][2]uint64{{0, 0}}
			}
			runs[0][0] = 0
			for i, r := range runs {
				h := p.ProgHeader
				h.Vaddr += r[0]
				h.Paddr += r[0]
				h.Filesz = r[1] - r[0]
				if i+1 < len(runs) {
					h.Memsz = runs[i+1][0] - r[0]
				} else {
					h.Memsz = p.Memsz - r[0]
				}
				h.Align = pageSize
				pieces = append(pieces, piece{h, seg[r[0]:r[1]]})
			}
		case elf.PT_NOTE:
			h := p.ProgHeader
			pieces = append(pieces, piece{h, seg})
			notes++
		}
	}
	if notes == 0 {
		return fmt.Errorf("%s: no PT_NOTE segment (a PVH kernel has its entry point there)", src)
	}
	const ehSize, phSize = 64, 56
	off := uint64(ehSize + phSize*len(pieces))
	for i := range pieces {
		p := &pieces[i].prog
		if len(pieces[i].data) == 0 {
			continue
		}
		if p.Type == elf.PT_LOAD {
			// p_offset ≡ p_vaddr (mod page size), as the ELF
			// specification asks of loadable segments.
			off = alignUp(off, pageSize) + p.Vaddr%pageSize
		} else {
			off = alignUp(off, 8)
		}
		p.Off = off
		off += p.Filesz
	}
	out := make([]byte, off)
	le := binary.LittleEndian
	copy(out, data[:16]) // e_ident
	le.PutUint16(out[16:], uint16(f.Type))
	le.PutUint16(out[18:], uint16(f.Machine))
	le.PutUint32(out[20:], uint32(f.Version))
	le.PutUint64(out[24:], f.Entry)
	le.PutUint64(out[32:], ehSize) // e_phoff
	le.PutUint64(out[40:], 0)      // e_shoff: no section headers
	le.PutUint32(out[48:], le.Uint32(data[48:]))
	le.PutUint16(out[52:], ehSize)
	le.PutUint16(out[54:], phSize)
	le.PutUint16(out[56:], uint16(len(pieces)))
	le.PutUint16(out[58:], 64) // e_shentsize
	le.PutUint16(out[60:], 0)  // e_shnum
	le.PutUint16(out[62:], 0)  // e_shstrndx
	for i, pc := range pieces {
		b := out[ehSize+phSize*i:]
		p := pc.prog
		le.PutUint32(b[0:], uint32(p.Type))
		le.PutUint32(b[4:], uint32(p.Flags))
		le.PutUint64(b[8:], p.Off)
		le.PutUint64(b[16:], p.Vaddr)
		le.PutUint64(b[24:], p.Paddr)
		le.PutUint64(b[32:], p.Filesz)
		le.PutUint64(b[40:], p.Memsz)
		le.PutUint64(b[48:], p.Align)
		copy(out[p.Off:], pc.data)
	}
	return os.WriteFile(dst, out, 0o644)
}

const pageSize = 4096

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// contentRuns are the [start, end) ranges of seg that are not whole
// pages of fill (zero, or 0xcc when exec), measured from the segment's
// start; a range ends at a page boundary or at the segment's end.
func contentRuns(seg []byte, exec bool) [][2]uint64 {
	var runs [][2]uint64
	for start := 0; start < len(seg); start += pageSize {
		end := min(start+pageSize, len(seg))
		page := seg[start:end]
		if end-start == pageSize && (allBytes(page, 0) || exec && allBytes(page, 0xcc)) {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1][1] == uint64(start) {
			runs[n-1][1] = uint64(end)
		} else {
			runs = append(runs, [2]uint64{uint64(start), uint64(end)})
		}
	}
	return runs
}

func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

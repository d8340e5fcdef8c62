package includeos

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The Multiboot Specification, version 0.6.96 (multiboot v1), as far as a
// loader needs it: an OS image holds a header, 4-byte aligned, within its
// first 8192 bytes, starting with Magic, then flags and a checksum that
// makes the three words sum to zero. With flag AddressFlag the next five
// words say where the image goes (header_addr, load_addr, load_end_addr,
// bss_end_addr, entry_addr), and a loader copies the file as it is without
// reading any ELF. Without it the loader must read the image's ELF program
// headers, which QEMU's -kernel and SYSLINUX's mboot.c32 do for 32-bit ELF
// files only.
const (
	Magic         = 0x1BADB002
	BootMagic     = 0x2BADB002 // in EAX when the loader jumps to the entry
	AddressFlag   = 1 << 16
	searchLimit   = 8192
	headerSize    = 12
	addressFields = 20 // five 32-bit words after the header
)

// Header is a multiboot header found in an image.
type Header struct {
	// Offset is its position in the file.
	Offset int
	Flags  uint32
	// The address fields, valid when Flags has AddressFlag.
	HeaderAddr, LoadAddr, LoadEndAddr, BSSEndAddr, EntryAddr uint32
}

// FindHeader returns the first valid multiboot header in the first 8192
// bytes of image.
func FindHeader(image []byte) (*Header, error) {
	n := min(len(image), searchLimit)
	for off := 0; off+headerSize <= n; off += 4 {
		if binary.LittleEndian.Uint32(image[off:]) != Magic {
			continue
		}
		flags := binary.LittleEndian.Uint32(image[off+4:])
		sum := binary.LittleEndian.Uint32(image[off+8:])
		if Magic+flags+sum != 0 {
			continue
		}
		h := &Header{Offset: off, Flags: flags}
		if flags&AddressFlag != 0 && off+headerSize+addressFields <= len(image) {
			w := func(i int) uint32 { return binary.LittleEndian.Uint32(image[off+headerSize+4*i:]) }
			h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr = w(0), w(1), w(2), w(3), w(4)
		}
		return h, nil
	}
	return nil, errors.New("no multiboot header in its first 8192 bytes")
}

// Kernel is a multiboot kernel that any multiboot loader (QEMU's -kernel
// among them) loads by its address fields.
type Kernel struct {
	// Image is the file: the ELF's loadable segments laid out from
	// LoadAddr, the header's address fields set.
	Image []byte
	Header
}

// segment is a PT_LOAD program header.
type segment struct{ paddr, filesz, memsz, off uint64 }

// MakeKernel turns a multiboot ELF (a 64-bit one such as IncludeOS's
// services, whose header sets no address fields) into a Kernel: its
// loadable segments at their physical addresses, in one image from the
// lowest, and its header with AddressFlag and the addresses that say so.
// The header must have room for the five address words (a section at
// least 32 bytes long that holds it, as IncludeOS's .multiboot is), or
// already set them.
func MakeKernel(elfFile string) (*Kernel, error) {
	raw, err := os.ReadFile(elfFile)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF file: %w", elfFile, err)
	}
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_386 {
		return nil, fmt.Errorf("%s is a %v ELF file; multiboot kernels here are x86 (x86-64 or i386)", elfFile, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("%s is an ELF %v, not an executable kernel", elfFile, f.Type)
	}
	if _, err := FindHeader(raw); err != nil {
		return nil, fmt.Errorf("%s is not a multiboot kernel: %w (an IncludeOS service links one in its .multiboot section)", elfFile, err)
	}
	var segs []segment
	lo, loadEnd, bssEnd := uint64(1<<63), uint64(0), uint64(0)
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		if p.Filesz > p.Memsz || p.Off+p.Filesz > uint64(len(raw)) {
			return nil, fmt.Errorf("%s: a loadable segment at %#x is larger than the file holds", elfFile, p.Paddr)
		}
		if p.Paddr+p.Memsz > 1<<32 {
			return nil, fmt.Errorf("%s: a loadable segment ends at %#x, above 4 GiB, where a multiboot loader cannot put it", elfFile, p.Paddr+p.Memsz)
		}
		for _, s := range segs {
			if p.Paddr < s.paddr+s.memsz && s.paddr < p.Paddr+p.Memsz {
				return nil, fmt.Errorf("%s: loadable segments at %#x and %#x overlap", elfFile, s.paddr, p.Paddr)
			}
		}
		segs = append(segs, segment{paddr: p.Paddr, filesz: p.Filesz, memsz: p.Memsz, off: p.Off})
		lo = min(lo, p.Paddr)
		loadEnd = max(loadEnd, p.Paddr+p.Filesz)
		bssEnd = max(bssEnd, p.Paddr+p.Memsz)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%s has no loadable segments", elfFile)
	}
	if f.Entry < lo || f.Entry >= bssEnd {
		return nil, fmt.Errorf("%s: its entry point %#x is outside its loadable segments", elfFile, f.Entry)
	}
	img := make([]byte, loadEnd-lo)
	for _, s := range segs {
		copy(img[s.paddr-lo:], raw[s.off:s.off+s.filesz])
	}
	h, err := FindHeader(img)
	if err != nil {
		return nil, fmt.Errorf("%s: laid out by its segments, %w", elfFile, err)
	}
	addr := lo + uint64(h.Offset)
	if h.Flags&AddressFlag == 0 {
		if err := headerRoom(f, addr); err != nil {
			return nil, fmt.Errorf("%s: %w", elfFile, err)
		}
	}
	h.Flags |= AddressFlag
	h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr =
		uint32(addr), uint32(lo), uint32(loadEnd), uint32(bssEnd), uint32(f.Entry)
	if h.Offset+headerSize+addressFields > len(img) {
		return nil, fmt.Errorf("%s: its multiboot header is at the end of its loaded image, without room for the address fields", elfFile)
	}
	w := func(i int, v uint32) { binary.LittleEndian.PutUint32(img[h.Offset+4*i:], v) }
	w(1, h.Flags)
	w(2, -(Magic + h.Flags))
	w(3, h.HeaderAddr)
	w(4, h.LoadAddr)
	w(5, h.LoadEndAddr)
	w(6, h.BSSEndAddr)
	w(7, h.EntryAddr)
	return &Kernel{Image: img, Header: *h}, nil
}

// headerRoom checks that the header at addr lies in a section with room
// for the address fields, so that writing them overwrites nothing else.
func headerRoom(f *elf.File, addr uint64) error {
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || addr < s.Addr || addr >= s.Addr+s.Size {
			continue
		}
		if addr+headerSize+addressFields <= s.Addr+s.Size {
			return nil
		}
		return fmt.Errorf("its multiboot header (in section %s) has no room for the address fields a loader needs to load a %v kernel; link the header with them (32 bytes)", s.Name, f.Class)
	}
	return fmt.Errorf("no section holds its multiboot header, so unikfile cannot tell whether the 20 bytes after it are free for the address fields")
}

// WriteTo writes the kernel's image.
func (k *Kernel) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(k.Image)
	return int64(n), err
}

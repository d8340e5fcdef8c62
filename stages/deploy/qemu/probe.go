package qemu

import (
	"bytes"
	"encoding/binary"
)

// probeExitCode is QEMU's exit status when the probe firmware finishes:
// isa-debug-exit exits with (value << 1) | 1, and the firmware writes 0x2a.
const probeExitCode = 0x2a<<1 | 1

// probeFirmware returns a 64 KiB BIOS image that does what a kernel's first
// steps do (real mode to protected mode, page tables, EFER.LME through
// wrmsr, paging on, a far jump into long mode) and then writes 0x2a to the
// isa-debug-exit port. QEMU exits with probeExitCode in a few milliseconds
// when the accelerator runs it; a KVM that cannot run guests hangs or aborts
// on the way, as it would with a real kernel.
//
// The firmware is mapped at 0xF0000 (and at the top of 4 GiB, where the CPU
// starts, 16 bytes below 4 GiB, with a far jump to offset 0).
func probeFirmware() []byte {
	const base = 0xf0000 // where the image's offset 0 is in real memory
	code := bytes.Join([][]byte{
		// 0x00, 16-bit real mode, CS = 0xF000.
		{0xfa},                               // cli
		{0xb8, 0x00, 0xf0},                   // mov ax, 0xf000
		{0x8e, 0xd8},                         // mov ds, ax
		{0x66, 0x0f, 0x01, 0x16, 0xb0, 0x00}, // lgdt [0xb0] (gdtr, 32-bit base)
		{0x0f, 0x20, 0xc0},                   // mov eax, cr0
		{0x0c, 0x01},                         // or al, 1 (PE)
		{0x0f, 0x22, 0xc0},                   // mov cr0, eax
		{0x66, 0xea, 0x1c, 0x00, 0x0f, 0x00, 0x08, 0x00}, // jmp dword 0x08:base+0x1c
		// 0x1c, 32-bit protected mode.
		{0x66, 0xb8, 0x10, 0x00},       // mov ax, 0x10
		{0x8e, 0xd8},                   // mov ds, ax
		{0x8e, 0xc0},                   // mov es, ax
		{0x8e, 0xd0},                   // mov ss, ax
		{0xbf, 0x00, 0x10, 0x00, 0x00}, // mov edi, 0x1000
		{0x31, 0xc0},                   // xor eax, eax
		{0xb9, 0x00, 0x0c, 0x00, 0x00}, // mov ecx, 3072
		{0xf3, 0xab},                   // rep stosd: zero 0x1000-0x3fff
		{0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00}, // PML4[0] = 0x2000 | P | W
		{0xc7, 0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00}, // PDPT[0] = 0x3000 | P | W
		{0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00}, // PD[0] = 2 MiB page at 0
		{0x0f, 0x20, 0xe0},                         // mov eax, cr4
		{0x83, 0xc8, 0x20},                         // or eax, 0x20 (PAE)
		{0x0f, 0x22, 0xe0},                         // mov cr4, eax
		{0xb8, 0x00, 0x10, 0x00, 0x00},             // mov eax, 0x1000
		{0x0f, 0x22, 0xd8},                         // mov cr3, eax
		{0xb9, 0x80, 0x00, 0x00, 0xc0},             // mov ecx, 0xc0000080 (EFER)
		{0x0f, 0x32},                               // rdmsr
		{0x0d, 0x00, 0x01, 0x00, 0x00},             // or eax, 0x100 (LME)
		{0x0f, 0x30},                               // wrmsr
		{0x0f, 0x20, 0xc0},                         // mov eax, cr0
		{0x0d, 0x00, 0x00, 0x00, 0x80},             // or eax, 0x80000000 (PG)
		{0x0f, 0x22, 0xc0},                         // mov cr0, eax
		{0xea, 0x83, 0x00, 0x0f, 0x00, 0x18, 0x00}, // jmp 0x18:base+0x83
		// 0x83, 64-bit long mode.
		{0xb0, 0x2a}, // mov al, 0x2a
		{0xe6, 0xf4}, // out 0xf4, al
		{0xf4},       // hlt
		{0xeb, 0xfd}, // jmp back to hlt
	}, nil)
	img := bytes.Repeat([]byte{0xf4}, 64<<10) // hlt everywhere else
	copy(img, code)
	const gdt, gdtr = 0x90, 0xb0
	for i, d := range []uint64{
		0,                  // null
		0x00cf9a000000ffff, // 0x08: 32-bit code, 4 GiB
		0x00cf92000000ffff, // 0x10: data, 4 GiB
		0x00af9a000000ffff, // 0x18: 64-bit code
	} {
		binary.LittleEndian.PutUint64(img[gdt+8*i:], d)
	}
	binary.LittleEndian.PutUint16(img[gdtr:], 4*8-1)
	binary.LittleEndian.PutUint32(img[gdtr+2:], base+gdt)
	// The reset vector: jmp 0xf000:0x0000.
	copy(img[0xfff0:], []byte{0xea, 0x00, 0x00, 0x00, 0xf0})
	return img
}

package disk

import (
	"bytes"
	"os"
	"testing"
)

// stubPath is Debian's EFI stub, the one PE file these readers meet.
const stubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// FuzzPE: the PE readers of the unified kernel image (the end of the
// stub's sections, the timestamp and checksum rewrite) never panic, and
// the rewrite keeps the file's length.
func FuzzPE(f *testing.F) {
	if b, err := os.ReadFile(stubPath); err == nil {
		f.Add(b)
	}
	f.Add(minimalPE())
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = peImageEnd(bytes.NewReader(b))
		c := append([]byte(nil), b...)
		if err := clearTimestamp(c); err == nil && len(c) != len(b) {
			t.Fatal("the rewrite changed the length")
		}
	})
}

// minimalPE is a DOS header pointing at a PE signature and a COFF header
// with a PE32+ optional header and no sections.
func minimalPE() []byte {
	b := make([]byte, 0x200)
	copy(b, "MZ")
	b[0x3c] = 0x40
	copy(b[0x40:], "PE\x00\x00")
	b[0x44], b[0x45] = 0x64, 0x86 // x86-64
	b[0x54] = 0xf0                // size of the optional header
	b[0x58], b[0x59] = 0x0b, 0x02 // PE32+
	b[0x98] = 1                   // a checksum to recompute
	return b
}

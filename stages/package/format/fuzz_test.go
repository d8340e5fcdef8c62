package format

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The readers of what qemu-img writes (a sparse VMDK's embedded
// descriptor, the VDI header, the VHD footer) and of the raw disk's GPT
// never panic or allocate without bound, whatever the file holds; the
// patches keep the file's size.

func tempFile(t *testing.T, b []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sizeOf(t *testing.T, f *os.File) int64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// vmdkSeed is a sparse extent header whose descriptor is at sector 1.
func vmdkSeed() []byte {
	b := make([]byte, 1536)
	copy(b, "KDMV")
	binary.LittleEndian.PutUint64(b[28:], 1)
	binary.LittleEndian.PutUint64(b[36:], 2)
	copy(b[512:], "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n")
	return b
}

var cidRe = regexp.MustCompile(`(?m)^CID=0123abcd$`)

func FuzzVMDKDescriptor(f *testing.F) {
	f.Add(vmdkSeed())
	f.Add([]byte("KDMV"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file := tempFile(t, b)
		err := patchVMDKDescriptor(file.Name(), "0123abcd")
		if got := sizeOf(t, file); got != int64(len(b)) && err == nil {
			t.Fatalf("the patch changed the size from %d to %d", len(b), got)
		}
		if err == nil {
			after, _ := os.ReadFile(file.Name())
			if !cidRe.Match(after) {
				t.Fatal("patched, but no CID line with the new value")
			}
		}
	})
}

func FuzzVDIHeader(f *testing.F) {
	seed := make([]byte, 512)
	binary.LittleEndian.PutUint32(seed[64:], 0xbeda107f)
	binary.LittleEndian.PutUint32(seed[68:], 0x00010001)
	f.Add(seed)
	f.Add([]byte{})
	id := bytes.Repeat([]byte{0xab}, 16)
	f.Fuzz(func(t *testing.T, b []byte) {
		file := tempFile(t, b)
		if err := patchVDIHeader(file, id, id); err == nil && sizeOf(t, file) != int64(len(b)) {
			t.Fatal("the patch changed the size")
		}
	})
}

func FuzzVHDFooter(f *testing.F) {
	seed := make([]byte, 1024)
	copy(seed[512:], "conectix")
	f.Add(seed, int64(512))
	f.Add([]byte("conectix"), int64(0))
	id := bytes.Repeat([]byte{0xcd}, 16)
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		file := tempFile(t, b)
		if err := patchVHDFooter(file, off, id); err == nil && sizeOf(t, file) != int64(len(b)) {
			t.Fatal("the patch changed the size")
		}
	})
}

// gptSeed is a disk with a GPT whose entries are at LBA 2.
func gptSeed() []byte {
	b := make([]byte, 64*sector)
	h := b[sector : 2*sector]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[12:], 92)
	binary.LittleEndian.PutUint64(h[48:], 30) // last usable
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 128)
	binary.LittleEndian.PutUint32(h[84:], 128)
	return b
}

func FuzzMoveGPT(f *testing.F) {
	f.Add(gptSeed(), int64(128))
	f.Add([]byte("EFI PART"), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, grow int64) {
		if grow < 0 || grow > 1<<20 {
			return // the new size is the caller's, a whole GiB above at most
		}
		file := tempFile(t, b)
		old := int64(len(b))
		newSize := old + grow*sector
		if err := file.Truncate(newSize); err != nil {
			t.Fatal(err)
		}
		if err := moveGPT(file, old, newSize); err == nil && sizeOf(t, file) != newSize {
			t.Fatalf("the disk is %d bytes after the move, want %d", sizeOf(t, file), newSize)
		}
	})
}

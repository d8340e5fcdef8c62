package format

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
)

func TestConvertRejectsBadInput(t *testing.T) {
	raw := &pack.Image{App: "a", Format: Raw, Disk: "disk.raw", Boot: "bios"}
	kernel := &pack.Image{App: "a", Format: pack.FormatKernelInitrd, Kernel: "kernel"}
	for _, tc := range []struct {
		name   string
		img    *pack.Image
		format string
		want   string
	}{
		{"unknown format", raw, "vmdk4", `disk format "vmdk4" is not known; formats: kernel+initrd, gce, qcow2, raw, vdi, vhd, vmdk, vmdk-sparse`},
		{"kernel+initrd source", kernel, QCOW2, `the source image is "kernel+initrd", not a raw disk`},
		{"raw to raw", raw, Raw, "a raw disk is made by the disk stage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(context.Background(), tc.img, t.TempDir(), tc.format, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want %q", err, tc.want)
			}
		})
	}
}

// TestMissingQEMUImg converts with a PATH that has no qemu-img.
func TestMissingQEMUImg(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "disk.raw"), make([]byte, 1<<20), 0o644)
	t.Setenv("PATH", t.TempDir())
	raw := &pack.Image{App: "a", Format: Raw, Disk: "disk.raw", Boot: "bios"}
	out := t.TempDir()
	_, err := Convert(context.Background(), raw, dir, QCOW2, out)
	if err == nil || !strings.Contains(err.Error(), "qemu-img not found in PATH; install it: apt-get install qemu-utils") {
		t.Errorf("err = %v", err)
	}
	if _, err := ToolDigest(VDI); err == nil || !strings.Contains(err.Error(), "apt-get install qemu-utils") {
		t.Errorf("ToolDigest: %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed conversion left %d files", len(ents))
	}
}

func TestVHDChecksum(t *testing.T) {
	// A footer whose bytes sum to 0x100 besides the checksum field: the
	// checksum is its one's complement.
	f := make([]byte, 512)
	f[0], f[100], f[64] = 0x80, 0x80, 0xff
	if got := vhdChecksum(f); got != ^uint32(0x100) {
		t.Errorf("vhdChecksum = %#x; want %#x", got, ^uint32(0x100))
	}
}

func TestPatchVMDKDescriptor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.vmdk")
	b := make([]byte, 4*512)
	copy(b, "KDMV")
	binary.LittleEndian.PutUint64(b[28:], 1) // descriptor at sector 1
	binary.LittleEndian.PutUint64(b[36:], 2) // two sectors long
	copy(b[512:], "# Disk DescriptorFile\nversion=1\nCID=3acc0ce\nparentCID=ffffffff\n")
	os.WriteFile(path, b, 0o644)
	if err := patchVMDKDescriptor(path, "0011aabb"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Disk DescriptorFile\nversion=1\nCID=0011aabb\nparentCID=ffffffff\n"
	if string(got[512:512+len(want)]) != want || got[512+len(want)] != 0 || len(got) != len(b) {
		t.Errorf("descriptor after patch:\n%q", got[512:512+len(want)+1])
	}
	os.WriteFile(path, make([]byte, 1024), 0o644)
	if err := patchVMDKDescriptor(path, "0011aabb"); err == nil {
		t.Errorf("a file without the VMDK magic was patched")
	}
}

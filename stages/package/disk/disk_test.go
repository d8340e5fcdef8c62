package disk

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
)

// kernelImage is a kernel+initrd image directory whose files are small
// stand-ins: enough for the checks that run before any tool.
func kernelImage(t *testing.T) (string, *pack.Image) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"kernel", "initrd"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, &pack.Image{App: "a", Base: "linux", Format: pack.FormatKernelInitrd, Kernel: "kernel", Initrd: "initrd", Digest: "d", Cmdline: "console=ttyS0"}
}

func TestBuildRejectsBadInput(t *testing.T) {
	dir, img := kernelImage(t)
	raw := *img
	raw.Format = "raw"
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"no image", Input{ImageDir: dir, Boot: "bios"}, "no kernel+initrd image"},
		{"disk as source", Input{ImageDir: dir, Image: &raw, Boot: "bios"}, `the source image is "raw"; a disk is made from a kernel+initrd image`},
		{"unknown boot mode", Input{ImageDir: dir, Image: img, Boot: "efi"}, `boot mode "efi": want "bios" or "uefi"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := Build(context.Background(), tc.in, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("a failed build left %d files in the output directory", len(ents))
			}
		})
	}
}

// TestMissingToolsNamePackages runs Build with an empty PATH and missing
// data files: the error lists every missing tool once and the Debian
// packages to install.
func TestMissingToolsNamePackages(t *testing.T) {
	dir, img := kernelImage(t)
	t.Setenv("PATH", t.TempDir())
	for boot, want := range map[string]string{
		pack.BootBIOS: "making a bootable disk needs sfdisk, mkfs.vfat, mcopy, mmd, syslinux, /nonexistent/mbr.bin, which are missing; install: apt-get install fdisk dosfstools mtools syslinux syslinux-common",
		pack.BootUEFI: "making a bootable disk needs sfdisk, mkfs.vfat, mcopy, mmd, objcopy, /nonexistent/stub.efi, which are missing; install: apt-get install fdisk dosfstools mtools binutils systemd-boot-efi",
	} {
		tools := Tools{MBR: "/nonexistent/mbr.bin", Stub: "/nonexistent/stub.efi", SbinDirs: []string{}}
		_, err := Build(context.Background(), Input{ImageDir: dir, Image: img, Boot: boot, Tools: tools}, t.TempDir())
		var mt *MissingToolError
		if !errors.As(err, &mt) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v\nwant %q", boot, err, want)
		}
		if _, err := tools.Digest(boot); !errors.As(err, &mt) {
			t.Errorf("%s: Tools.Digest without tools: %v", boot, err)
		}
	}
}

func TestDerivedIDs(t *testing.T) {
	a, b := deriveIDs("digest1", "bios"), deriveIDs("digest1", "uefi")
	if a == b || deriveIDs("digest1", "bios") != a || deriveIDs("digest2", "bios") == a {
		t.Errorf("identifiers must depend on the source and the boot mode, and only on them")
	}
	if g := a.diskGUID; len(g) != 36 || g[14] != '4' || !strings.ContainsRune("89ab", rune(g[19])) {
		t.Errorf("disk GUID %q is not an RFC 4122 version 4 GUID", g)
	}
	if len(a.mbrID) != 10 || len(a.volumeID) != 8 {
		t.Errorf("MBR id %q, volume id %q", a.mbrID, a.volumeID)
	}
}

func TestPartitionSize(t *testing.T) {
	for _, tc := range []struct{ payload, want int64 }{
		{0, 64 * mib},
		{24 * mib, 64 * mib},
		{100 * mib, 121 * mib},
	} {
		if got := partitionSize(tc.payload); got != tc.want {
			t.Errorf("partitionSize(%d MiB) = %d MiB; want %d MiB", tc.payload/mib, got/mib, tc.want/mib)
		}
	}
}

// TestClearPETimestamp adds a section to systemd's EFI stub with objcopy
// (which stamps the time and a checksum), clears the time stamp, and
// checks that the checksum is what objcopy computes for such a file.
func TestClearPETimestamp(t *testing.T) {
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("objcopy not installed (apt-get install binutils)")
	}
	if _, err := os.Stat(DefaultStub); err != nil {
		t.Skip("systemd's EFI stub not installed (apt-get install systemd-boot-efi)")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.WriteFile(data, []byte("ID=test\n"), 0o644)
	out := filepath.Join(dir, "out.efi")
	if b, err := exec.Command(objcopy, "--add-section", ".osrel="+data, "--change-section-vma", ".osrel=0x40000", DefaultStub, out).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	peOff := int(binary.LittleEndian.Uint32(b[0x3c:]))
	sumOff := peOff + 24 + 64
	stored := binary.LittleEndian.Uint32(b[sumOff:])
	if stored == 0 {
		t.Skip("objcopy wrote no checksum")
	}
	if got := peChecksum(b, sumOff); got != stored {
		t.Fatalf("peChecksum = %#x; objcopy wrote %#x", got, stored)
	}
	if err := clearPETimestamp(out); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(out)
	if ts := binary.LittleEndian.Uint32(b2[peOff+8:]); ts != 0 {
		t.Errorf("time stamp %d after clearing", ts)
	}
	if got := binary.LittleEndian.Uint32(b2[sumOff:]); got != peChecksum(b2, sumOff) {
		t.Errorf("stored checksum %#x, computed %#x", got, peChecksum(b2, sumOff))
	}
	f, err := pe.NewFile(bytes.NewReader(b2))
	if err != nil {
		t.Fatal(err)
	}
	if f.Section(".osrel") == nil {
		t.Errorf("the patched file lost its .osrel section")
	}
	if err := clearTimestamp([]byte("not a PE file at all, but long enough to have a DOS header's fields....")); err == nil {
		t.Errorf("clearTimestamp accepted a file that is not PE")
	}
}

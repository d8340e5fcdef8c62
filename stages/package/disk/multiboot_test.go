package disk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
)

// multibootImage is a direct-boot image of a multiboot kernel (a stand-in
// file: the disk stage only copies it).
func multibootImage(t *testing.T) (string, *pack.Image) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rumprun.bin"), []byte("multiboot kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, &pack.Image{App: "a", Base: "rump", Format: pack.FormatKernelInitrd, Kernel: "rumprun.bin", KernelEntry: pack.KernelEntryMultiboot,
		Digest: "d", Cmdline: `{"net":{"if":"vioif0","type":"inet","method":"dhcp"},"cmdline":"a 8080"}`,
		Console: &pack.ConsoleProtocol{Boot: "rump kernel", Ready: "=== calling", Halts: true}}
}

func TestMultibootDiskBootsByBIOSOnly(t *testing.T) {
	dir, img := multibootImage(t)
	out := t.TempDir()
	_, err := Build(context.Background(), Input{ImageDir: dir, Image: img, Boot: pack.BootUEFI}, out)
	if err == nil || !strings.Contains(err.Error(), `boot by BIOS only (SYSLINUX's mboot.c32): use boot = "bios"`) {
		t.Fatalf("uefi disk of a multiboot kernel: %v", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed build left %d files", len(ents))
	}
}

func TestMultibootNeedsMBoot(t *testing.T) {
	dir, img := multibootImage(t)
	tools := Tools{MBoot: "/nonexistent/mboot.c32"}
	_, err := Build(context.Background(), Input{ImageDir: dir, Image: img, Boot: pack.BootBIOS, Tools: tools}, t.TempDir())
	var mt *MissingToolError
	if !errors.As(err, &mt) || !strings.Contains(err.Error(), "/nonexistent/mboot.c32, /nonexistent/libcom32.c32") || !strings.Contains(err.Error(), "syslinux-common") {
		t.Fatalf("err = %v", err)
	}
	if _, err := tools.MultibootDigest(pack.BootBIOS); !errors.As(err, &mt) {
		t.Errorf("MultibootDigest without mboot.c32: %v", err)
	}
	if _, err := tools.Digest(pack.BootBIOS); err != nil && errors.As(err, &mt) && strings.Contains(err.Error(), "mboot") {
		t.Errorf("a Linux kernel's disk needs mboot.c32: %v", err)
	}
}

// A multiboot kernel's BIOS disk holds SYSLINUX's mboot.c32 and the
// library it loads, and a configuration that runs it with the kernel and
// the image's command line; the disk image keeps the console protocol.
// (stages/package/rump's boot tests boot such disks.)
func TestMultibootDiskLayout(t *testing.T) {
	if _, err := (Tools{}).MultibootDigest(pack.BootBIOS); err != nil {
		t.Skipf("disk tools missing (scripts/install-deps installs them): %v", err)
	}
	dir, img := multibootImage(t)
	out := t.TempDir()
	got, err := Build(context.Background(), Input{ImageDir: dir, Image: img, Boot: pack.BootBIOS}, out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Console == nil || !got.Console.Halts || got.Cmdline != img.Cmdline {
		t.Errorf("disk image: %+v", got)
	}
	fat := filepath.Join(out, File) + "@@" + strconv.Itoa(partStart)
	cfg, err := exec.Command("mtype", "-i", fat, "::SYSLINUX.CFG").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  COM32 /MBOOT.C32\n", "  APPEND /KERNEL " + img.Cmdline + "\n"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("SYSLINUX.CFG lacks %q:\n%s", want, cfg)
		}
	}
	for name, host := range map[string]string{"MBOOT.C32": DefaultMBoot, "LIBCOM32.C32": Tools{}.libcom32(), "KERNEL": filepath.Join(dir, "rumprun.bin")} {
		b, err := exec.Command("mtype", "-i", fat, "::"+name).Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, _ := os.ReadFile(host)
		if string(b) != string(want) {
			t.Errorf("%s on the disk differs from %s", name, host)
		}
	}
}

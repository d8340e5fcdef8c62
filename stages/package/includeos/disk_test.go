package includeos

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/stages/deploy/console"
	pack "github.com/unikfile/unikfile/stages/package"
)

func TestGRUBScript(t *testing.T) {
	got := grubScript(`a $HOME it's {x};#`)
	want := `multiboot '/boot/kernel' '/boot/kernel' 'a' '$HOME' 'it'\''s' '{x};#'` + "\n"
	if !strings.Contains(got, want) || !strings.HasPrefix(got, "serial --unit=0") || !strings.HasSuffix(got, "boot\n") {
		t.Errorf("script:\n%s", got)
	}
}

// The fixture's HTTP service on its BIOS disk (GRUB's hybrid ISO image),
// booted by SeaBIOS from a virtio disk as the qemu provider boots raw
// disks: it answers, and the command line GRUB gave has the kernel's path
// first. Two disks of one image are the same bytes.
func TestBootQEMUBIOSDisk(t *testing.T) {
	qemu := qemuPath(t)
	if _, err := (GRUB{}).Digest(); err != nil {
		t.Skip(err)
	}
	b := compileService(t.Context(), t, newCache(t), "httpd", "cpp", fixtureService(t, "httpd"))
	srcDir, src := image(t, b, []string{"--from", "$x;{y}"}, 80)
	dir := t.TempDir()
	img, err := BuildDisk(t.Context(), DiskInput{ImageDir: srcDir, Image: src, Boot: pack.BootBIOS}, dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := BuildDisk(t.Context(), DiskInput{ImageDir: srcDir, Image: src}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != again.Digest || img.Size%(1<<20) != 0 || img.Console == nil || img.Source != src.Digest {
		t.Errorf("disks %+v and %+v", img, again)
	}
	if _, err := BuildDisk(t.Context(), DiskInput{ImageDir: srcDir, Image: src, Boot: pack.BootUEFI}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "BIOS only") {
		t.Errorf("a UEFI disk: %v", err)
	}
	port := freePort(t)
	v := bootDisk(t, qemu, filepath.Join(dir, img.Disk), img.MemoryMiB, port, 80)
	body, took := v.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 3*time.Minute)
	if body != "Hello from IncludeOS\n" {
		t.Errorf("GET / = %q", body)
	}
	t.Logf("first response %v after QEMU started (SeaBIOS and GRUB included)", took.Round(time.Millisecond))
	con := v.console()
	if !strings.Contains(con, ": /boot/kernel --from $x;{y}\n") {
		t.Errorf("the console does not show GRUB's command line")
	}
	s := &console.Scanner{Protocol: img.Console}
	s.Write([]byte(con))
	if !s.Ready() {
		t.Error("the console protocol did not see the service start")
	}
}

package linux

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/unikfile/unikfile/guest"
)

// A kernel that mounts root disks gets a large bundle on an EROFS disk
// and an initramfs of the init alone; a small bundle stays in the
// initramfs.
func TestLargeBundleGoesOnARootDisk(t *testing.T) {
	in := testInput(t)
	in.Kernel.RootFS = RootFSEROFS
	big := bytes.Repeat([]byte("python stdlib "), RootDiskMinBytes/14+1)
	if err := os.WriteFile(filepath.Join(in.BundleRoot, "srv", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	img, err := Build(context.Background(), in, out)
	if err != nil {
		t.Fatal(err)
	}
	if img.RootDisk != RootFile {
		t.Fatalf("image root %q, want %q", img.RootDisk, RootFile)
	}
	ents := readImageCPIO(t, out)
	for _, want := range []string{"init", "etc/unikfile/init.json", "dev/console", "proc", "sys", "dev", "tmp", "run"} {
		if _, ok := ents[want]; !ok {
			t.Errorf("initramfs lacks /%s", want)
		}
	}
	for _, not := range []string{"app", "srv/big.bin", "etc/hosts", "etc/ssl/certs/ca-certificates.crt"} {
		if _, ok := ents[not]; ok {
			t.Errorf("initramfs has /%s, which belongs on the root disk", not)
		}
	}
	var cfg guest.Config
	if err := json.Unmarshal(ents["etc/unikfile/init.json"].Data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Root == nil || cfg.Root.Device != RootDevice || cfg.Root.FSType != "erofs" {
		t.Errorf("init config root = %+v", cfg.Root)
	}
	if fi, err := os.Stat(filepath.Join(out, InitrdFile)); err != nil || fi.Size() > 64<<10 {
		t.Errorf("initramfs of the init alone is %d bytes (%v)", fi.Size(), err)
	}
	if fsck, err := exec.LookPath("fsck.erofs"); err == nil {
		x := filepath.Join(t.TempDir(), "x")
		if b, err := exec.Command(fsck, "--extract="+x, filepath.Join(out, RootFile)).CombinedOutput(); err != nil {
			t.Fatalf("fsck.erofs: %v\n%s", err, b)
		}
		got, err := os.ReadFile(filepath.Join(x, "srv", "big.bin"))
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("srv/big.bin on the root disk: %d bytes (%v), want %d", len(got), err, len(big))
		}
		for _, want := range []string{"app", "etc/hosts", "etc/ssl/certs/ca-certificates.crt", "proc", "tmp"} {
			if _, err := os.Lstat(filepath.Join(x, want)); err != nil {
				t.Errorf("root disk lacks /%s: %v", want, err)
			}
		}
	}
	again := t.TempDir()
	img2, err := Build(context.Background(), in, again)
	if err != nil {
		t.Fatal(err)
	}
	if img2.Digest != img.Digest {
		t.Error("the same input gave two image digests")
	}
	// The same bundle without root disk support stays in the initramfs.
	in.Kernel.RootFS = ""
	plain := t.TempDir()
	img3, err := Build(context.Background(), in, plain)
	if err != nil {
		t.Fatal(err)
	}
	if img3.RootDisk != "" || img3.Digest == img.Digest {
		t.Errorf("without RootFS: root %q, digest equal %v", img3.RootDisk, img3.Digest == img.Digest)
	}
	if _, ok := readImageCPIO(t, plain)["srv/big.bin"]; !ok {
		t.Error("without RootFS the bundle is not in the initramfs")
	}
}

func TestSmallBundleStaysInTheInitramfs(t *testing.T) {
	in := testInput(t)
	in.Kernel.RootFS = RootFSEROFS
	out := t.TempDir()
	img, err := Build(context.Background(), in, out)
	if err != nil {
		t.Fatal(err)
	}
	if img.RootDisk != "" {
		t.Errorf("a small bundle got a root disk")
	}
	if _, ok := readImageCPIO(t, out)["app"]; !ok {
		t.Error("the app is not in the initramfs")
	}
}

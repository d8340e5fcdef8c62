package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// diskApp is qemuApp with the target's format and boot mode set.
func diskApp(port int, format, boot string) string {
	return fmt.Sprintf(`app "a" {
  language = "go"
  ports    = [8080]
}
target "dev" {
  provider = "qemu"
  apps     = [app.a]
  format   = %q
  boot     = %q
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d }
  }
}
`, format, boot, port)
}

type imageRow struct {
	App         string   `json:"app"`
	Digest      string   `json:"digest"`
	Format      string   `json:"format"`
	Boot        string   `json:"boot"`
	File        string   `json:"file"`
	Size        int64    `json:"size"`
	VirtualSize int64    `json:"virtual_size"`
	Source      string   `json:"source"`
	Instances   []string `json:"instances"`
}

// TestUpBootsDiskFormats runs `up` on a target with format = "qcow2" and
// boot = "uefi" (OVMF on q35, no -kernel), then switches the target to a
// BIOS-booting vmdk: the app answers both times, the instance is replaced
// because its image changed, and `images` shows the disks in use.
func TestUpBootsDiskFormats(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": diskApp(port, "qcow2", "uefi"),
		"go.mod":   goMod,
		"main.go":  helloSource("hello from a disk"),
	})
	p.ok("up")
	if got := get(t, port); !strings.Contains(got, "hello from a disk") {
		t.Fatalf("GET = %q", got)
	}
	var insts []struct {
		ID     string `json:"id"`
		Config struct {
			Machine    string `json:"machine"`
			Kernel     string `json:"kernel"`
			Disk       string `json:"disk"`
			DiskFormat string `json:"disk_format"`
			Firmware   string `json:"firmware"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(p.ok("ps", "--json").stdout), &insts); err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 {
		t.Fatalf("ps: %d instances, want 1", len(insts))
	}
	c := insts[0].Config
	if c.Kernel != "" || c.Machine != "q35" || c.Firmware != "uefi" || c.DiskFormat != "qcow2" || !strings.HasSuffix(c.Disk, "/disk.qcow2") {
		t.Errorf("QEMU config of a uefi qcow2 target: %+v", c)
	}
	rows := images(t, p)
	used := false
	for _, r := range rows {
		if r.Format == "qcow2" && r.Boot == "uefi" && len(r.Instances) == 1 && r.Instances[0] == insts[0].ID {
			used = true
			if fi, err := os.Stat(r.File); err != nil || fi.Size() != r.Size || r.VirtualSize < r.Size || r.Source == "" {
				t.Errorf("images row %+v; file: %v", r, err)
			}
		}
	}
	if !used {
		t.Errorf("images --json does not show the qcow2 uefi image in use by %s:\n%+v", insts[0].ID, rows)
	}
	if r := p.ok("up"); !strings.Contains(r.stdout, "Nothing changed") {
		t.Errorf("a second up changed something:\n%s", r.stdout)
	}

	p.write("Unikfile", diskApp(port, "vmdk", "bios"))
	r := p.ok("up")
	if !strings.Contains(r.stdout, "replaced") {
		t.Errorf("changing the format did not replace the instance:\n%s", r.stdout)
	}
	if got := get(t, port); !strings.Contains(got, "hello from a disk") {
		t.Fatalf("GET after the switch to vmdk = %q", got)
	}
}

func images(t *testing.T, p *project) []imageRow {
	t.Helper()
	var rows []imageRow
	if err := json.Unmarshal([]byte(p.ok("images", "--json").stdout), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestBuildFormatWithoutTarget builds a vhd with `build --format` (no
// target in the Unikfile) and checks what it prints against the file.
func TestBuildFormatWithoutTarget(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": "app \"a\" {\n  language = \"go\"\n  ports = [8080]\n}\n",
		"go.mod":   goMod,
		"main.go":  helloSource("x"),
	})
	var out []imageRow
	r := p.ok("build", "--format", "vhd", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(out) != 1 || out[0].Format != "vhd" || out[0].Boot != "bios" || filepath.Base(out[0].File) != "disk.vhd" {
		t.Fatalf("build --format vhd printed %+v", out)
	}
	fi, err := os.Stat(out[0].File)
	if err != nil {
		t.Fatal(err)
	}
	// A fixed VHD is the disk plus a 512-byte footer; Azure wants the disk
	// a whole number of MiB.
	if fi.Size() != out[0].Size || out[0].VirtualSize%(1<<20) != 0 || fi.Size() != out[0].VirtualSize+512 {
		t.Errorf("vhd: file %d bytes, printed size %d, virtual size %d", fi.Size(), out[0].Size, out[0].VirtualSize)
	}
	again := p.ok("build", "--format", "vhd", "--json")
	if again.stdout != r.stdout {
		t.Errorf("a second build printed something else:\n%s\nthen\n%s", r.stdout, again.stdout)
	}

	bad := p.run("build", "--format", "vmdk4")
	if bad.code != 1 || !strings.Contains(bad.stderr, `disk format "vmdk4" is not known`) || !strings.Contains(bad.stderr, "qcow2") {
		t.Errorf("build --format vmdk4: exit %d\n%s", bad.code, bad.stderr)
	}
}

// TestDiskToolsMissing builds a disk with a PATH that has Go but none of
// the disk tools: exit 1, and the error names the Debian packages.
func TestDiskToolsMissing(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": "app \"a\" {\n  language = \"go\"\n}\n",
		"go.mod":   goMod,
		"main.go":  helloSource("x"),
	})
	bin := t.TempDir()
	goBin, err := lookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(goBin, filepath.Join(bin, "go"))
	p.env = []string{"PATH=" + bin}
	r := p.run("build", "--format", "qcow2")
	if r.code != 1 {
		t.Fatalf("build --format qcow2 without disk tools: exit %d, want 1\n%s", r.code, r.stderr)
	}
	// sfdisk and mkfs.vfat are found in /usr/sbin even outside PATH.
	for _, want := range []string{"needs mcopy, mmd, syslinux", "apt-get install mtools syslinux"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("missing-tools error lacks %q:\n%s", want, r.stderr)
		}
	}
}

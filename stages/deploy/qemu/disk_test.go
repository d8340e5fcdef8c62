package qemu

import (
	"strings"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

func TestCheckDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  pack.Image
		want string
	}{
		{"gce", pack.Image{Format: "gce", Disk: "disk.tar.gz", Boot: "bios"}, `cannot boot gce images`},
		{"unknown", pack.Image{Format: "iso", Disk: "x", Boot: "bios"}, `boots kernel+initrd and disk images, not "iso"`},
		{"no disk file", pack.Image{Format: "qcow2", Boot: "bios"}, "names no disk file"},
		{"no boot mode", pack.Image{Format: "qcow2", Disk: "disk.qcow2"}, `boot mode is ""`},
		{"qcow2", pack.Image{Format: "qcow2", Disk: "disk.qcow2", Boot: "uefi"}, ""},
	} {
		err := checkDisk(&tc.img)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v; want %q", tc.name, err, tc.want)
		}
	}
}

func TestSetDisk(t *testing.T) {
	spec := &deploy.Spec{ImageDir: "/images/x", RunDir: "/run/i",
		Image: &pack.Image{Format: "vhd", Disk: "disk.vhd", Boot: "bios"}}
	cfg := Config{Machine: "pc"}
	p := &Provider{}
	if err := p.setDisk(&cfg, spec); err != nil {
		t.Fatal(err)
	}
	if cfg.Disk != "/images/x/disk.vhd" || cfg.DiskFormat != "vpc" || cfg.Machine != "pc" || cfg.Firmware != "" {
		t.Errorf("bios vhd: %+v", cfg)
	}

	// UEFI without OVMF: the error names the package.
	spec.Image = &pack.Image{Format: "qcow2", Disk: "disk.qcow2", Boot: "uefi"}
	p = &Provider{OVMFCode: "/nonexistent/OVMF_CODE_4M.fd"}
	cfg = Config{Machine: "pc"}
	err := p.setDisk(&cfg, spec)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/OVMF_CODE_4M.fd is missing; install it: apt-get install ovmf") {
		t.Errorf("err = %v", err)
	}
}

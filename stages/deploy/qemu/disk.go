package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// Debian's OVMF (package ovmf): the firmware's code, booted read-only, and
// the template of its variable store, which each instance copies.
const (
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	ovmfVarsFile    = "OVMF_VARS.fd" // in the run directory
)

// ovmfHint ends the error when OVMF is missing.
const ovmfHint = "install it: apt-get install ovmf"

// isDisk says whether the image boots from a disk rather than -kernel.
func isDisk(img *pack.Image) bool {
	return img.Format != "" && img.Format != pack.FormatKernelInitrd
}

// checkDisk rejects a disk image this provider cannot boot.
func checkDisk(img *pack.Image) error {
	f, ok := format.Lookup(img.Format)
	if !ok {
		return fmt.Errorf("the qemu provider boots kernel+initrd and disk images, not %q", img.Format)
	}
	if f.QEMU == "" {
		return fmt.Errorf("the qemu provider cannot boot %s images (a %s is for importing into %s); use format = \"raw\" or \"qcow2\" for this target", img.Format, f.File, f.Platforms)
	}
	if img.Disk == "" {
		return errors.New("the disk image names no disk file; rebuild it")
	}
	if img.Boot != pack.BootBIOS && img.Boot != pack.BootUEFI {
		return fmt.Errorf("the disk image's boot mode is %q; rebuild it", img.Boot)
	}
	return nil
}

// setDisk makes cfg boot the spec's disk image: q35 and OVMF for UEFI
// (the variable store is copied into the run directory by
// prepareFirmware), SeaBIOS on the pc machine for BIOS.
func (p *Provider) setDisk(cfg *Config, spec *deploy.Spec) error {
	f, _ := format.Lookup(spec.Image.Format)
	cfg.Disk = filepath.Join(spec.ImageDir, spec.Image.Disk)
	cfg.DiskFormat = f.QEMU
	if spec.Image.Boot != pack.BootUEFI {
		return nil
	}
	cfg.Machine, cfg.Firmware = MachineQ35, FirmwareUEFI
	cfg.OVMFCode = or(p.OVMFCode, DefaultOVMFCode)
	cfg.OVMFVars = filepath.Join(spec.RunDir, ovmfVarsFile)
	for _, f := range []string{cfg.OVMFCode, or(p.OVMFVars, DefaultOVMFVars)} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("UEFI boot needs OVMF, and %s is missing; %s", f, ovmfHint)
		}
	}
	return nil
}

// prepareFirmware gives a UEFI instance its own copy of OVMF's variables.
func (p *Provider) prepareFirmware(cfg Config) error {
	if cfg.Firmware != FirmwareUEFI {
		return nil
	}
	b, err := os.ReadFile(or(p.OVMFVars, DefaultOVMFVars))
	if err != nil {
		return fmt.Errorf("OVMF variables: %w; %s", err, ovmfHint)
	}
	return os.WriteFile(cfg.OVMFVars, b, 0o600)
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

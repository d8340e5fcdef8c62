package osv

import (
	"fmt"
	"path/filepath"
	"strings"

	pack "github.com/unikfile/unikfile/stages/package"
)

// Machine is the QEMU machine OSv images boot on. Under TCG, microvm stops
// with "Neither paravirtual clock nor HPET is available" (TCG has no
// kvmclock) and q35 hangs after the virtio block device attaches.
const Machine = "pc"

// QEMUArgs are the arguments a direct-boot image needs besides the
// machine, memory, console and network: the kernel, the command line, and
// the root disk on virtio-blk, read-only (the ROFS is never written, so
// instances share the cached file). They are what unikfile's qemu provider
// passes for any image with a RootDisk; BIOS disks boot like every raw or
// qcow2 disk.
func QEMUArgs(imageDir string, img *pack.Image) ([]string, error) {
	if img.Format != FormatDirect || img.Kernel == "" || img.RootDisk == "" {
		return nil, fmt.Errorf("image of %s is a %q image without a root disk, not an osv direct-boot image", img.App, img.Format)
	}
	root := filepath.Join(imageDir, img.RootDisk)
	if strings.Contains(root, ",") {
		return nil, fmt.Errorf("path %q contains a comma, which QEMU's -drive syntax cannot carry; use a cache directory without commas", root)
	}
	return []string{
		"-kernel", filepath.Join(imageDir, img.Kernel),
		"-append", img.Cmdline,
		"-drive", "file=" + root + ",if=none,id=rootfs,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=rootfs",
	}, nil
}

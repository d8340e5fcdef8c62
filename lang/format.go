package lang

import (
	"fmt"
	"strings"
)

// Disk formats and boot modes a target may ask for. stages/package/format
// owns how each is written; this table is what the language accepts.
var (
	formats = []string{"kernel+initrd", "raw", "qcow2", "vmdk", "vmdk-sparse", "vhd", "vdi", "gce"}
	boots   = []string{"bios", "uefi"}
)

// providerDefaults is the format and boot mode a target of a provider gets
// when it sets none. qemu boots the kernel and initramfs directly (the
// fastest start); the others are what each platform imports, booting by
// BIOS, which every platform takes without extra image flags (UEFI needs
// e.g. GCE's UEFI_COMPATIBLE feature or an AMI's uefi boot mode).
var providerDefaults = map[string]struct{ Format, Boot string }{
	"qemu":    {"kernel+initrd", "bios"},
	"libvirt": {"qcow2", "bios"},
	"vsphere": {"vmdk", "bios"},
	"aws":     {"raw", "bios"},
	"gcp":     {"gce", "bios"},
}

// providerFormats are the formats a provider can boot; a provider missing
// here takes every format.
var providerFormats = map[string][]string{
	"qemu": {"kernel+initrd", "raw", "qcow2", "vmdk", "vmdk-sparse", "vhd", "vdi"},
}

// decodeFormat reads a target's format and boot attributes, applying the
// provider's defaults.
func decodeFormat(d *decoder, t *Target) {
	def := providerDefaults[t.Provider]
	t.Format = d.choice("format", def.Format, formats)
	t.Boot = d.choice("boot", def.Boot, boots)
	if allowed, ok := providerFormats[t.Provider]; ok && !contains(allowed, t.Format) {
		if attr := d.attrs["format"]; attr != nil {
			d.errorf(attr.Expr.Range(), "Format not bootable by provider",
				"The %s provider cannot boot format %q; it boots: %s. Build other formats without a target: unikfile build --format %s.",
				t.Provider, t.Format, strings.Join(allowed, ", "), t.Format)
		}
	}
	if attr := d.attrs["boot"]; attr != nil && t.Format == "kernel+initrd" {
		d.errorf(attr.Expr.Range(), "Boot mode without a disk",
			"boot selects the firmware of a disk image, and format %s boots the kernel directly; set format (e.g. %s) or remove boot.",
			fmt.Sprintf("%q", t.Format), `format = "qcow2"`)
	}
}

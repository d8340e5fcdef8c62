package lang

import (
	"fmt"
	"slices"
	"strings"
)

// decodeFormat reads a target's format and boot attributes, applying the
// provider's defaults, and checks that the provider boots the format.
func decodeFormat(d *decoder, t *Target, prov ProviderSchema) {
	defFormat, defBoot := prov.Default()
	t.Format = d.choice("format", defFormat, d.s.cat.Formats)
	t.Boot = d.choice("boot", defBoot, d.s.cat.Boots)
	if allowed := prov.Formats(); !slices.Contains(allowed, t.Format) {
		if attr := d.attrs["format"]; attr != nil {
			d.errorf(attr.Expr.Range(), "Format not bootable by provider",
				"The %s provider cannot boot format %q; it boots: %s. Build other formats without a target: unikfile build --format %s.",
				t.Provider, t.Format, strings.Join(allowed, ", "), t.Format)
		}
	}
	if attr := d.attrs["boot"]; attr != nil && t.Format == FormatKernelInitrd {
		d.errorf(attr.Expr.Range(), "Boot mode without a disk",
			"boot selects the firmware of a disk image, and format %s boots the kernel directly; set format (e.g. %s) or remove boot.",
			fmt.Sprintf("%q", t.Format), `format = "qcow2"`)
	}
}

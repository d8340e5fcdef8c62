package deploy

import (
	"fmt"

	pack "github.com/unikfile/unikfile/stages/package"
)

// ForeignGuests is implemented by a provider that boots the images of
// bases without unikfile's guest init: it applies an image's own console
// protocol (pack.Image.Console: its ready line, the guest's acceptance of
// connections on the forwarded ports (Accepts), exit lines and address)
// and attaches its read-only root disk (pack.Image.RootDisk). A provider
// that does not implement it would wait for markers such a guest never
// prints, or boot its kernel without its file system.
type ForeignGuests interface {
	BootsForeignGuests()
}

// CheckImage refuses, before anything is made, an image that provider
// (named name) cannot boot as its base needs.
func CheckImage(name string, p Provider, img *pack.Image) error {
	if img == nil || (img.Console == nil && img.RootDisk == "") {
		return nil
	}
	if _, ok := p.(ForeignGuests); ok {
		return nil
	}
	base := img.Base
	if base == "" {
		base = "its base"
	}
	return fmt.Errorf("provider %q cannot boot images of base %q yet (the guest has no unikfile init: it reports on the console in its own protocol and may read a separate root disk, which only the qemu provider applies); put the app in a target with provider = \"qemu\", or use base = \"linux\"", name, base)
}

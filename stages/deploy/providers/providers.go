package providers

import (
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
)

// Registry returns every provider unikfile knows, by the name a target's
// `provider` attribute uses.
func Registry() deploy.Registry {
	return deploy.Registry{
		qemu.Name: qemu.New,
	}
}

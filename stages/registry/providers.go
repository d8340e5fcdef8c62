package registry

import (
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
)

// provider is one line of the table: its constructor, and its settings
// as the Unikfile sees them.
type provider struct {
	new    deploy.NewFunc
	schema lang.ProviderSchema
}

// providers is the table of providers, by the name a target's `provider`
// attribute uses.
var providers = map[string]provider{
	qemu.Name: {qemu.New, qemu.Schema{}},
}

// Providers returns the constructor of every provider.
func Providers() deploy.Registry {
	r := deploy.Registry{}
	for name, p := range providers {
		r[name] = p.new
	}
	return r
}

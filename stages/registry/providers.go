package registry

import (
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/aws"
	"github.com/unikfile/unikfile/stages/deploy/gcp"
	"github.com/unikfile/unikfile/stages/deploy/libvirt"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
	"github.com/unikfile/unikfile/stages/deploy/vsphere"
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
	qemu.Name:    {qemu.New, qemu.Schema{}},
	vsphere.Name: {vsphere.New, vsphere.Schema{}},
	libvirt.Name: {libvirt.New, libvirt.Schema{}},
	aws.Name:     {aws.New, aws.Schema{}},
	gcp.Name:     {gcp.New, gcp.Schema{}},
}

// Providers returns the constructor of every provider.
func Providers() deploy.Registry {
	r := deploy.Registry{}
	for name, p := range providers {
		r[name] = p.new
	}
	return r
}

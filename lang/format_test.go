package lang_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	. "github.com/unikfile/unikfile/lang"
)

// diskProvider stands for a provider that boots disks only, with its own
// default: lang applies the defaults and checks formats of any provider
// the catalog holds, whichever are built.
type diskProvider struct{ format, boot string }

func (p diskProvider) Formats() []string                      { return []string{"vmdk", "gce", "qcow2"} }
func (p diskProvider) Default() (string, string)              { return p.format, p.boot }
func (diskProvider) Schema() *hcl.BodySchema                  { return nil }
func (diskProvider) Decode(*Block, TargetInfo) TargetSettings { return nil }

func TestTargetFormatDefaultsPerProvider(t *testing.T) {
	cat := *catalog
	cat.Providers = map[string]ProviderSchema{"vm": diskProvider{"vmdk", "bios"}, "cloud": diskProvider{"gce", "bios"}}
	for name, p := range catalog.Providers {
		cat.Providers[name] = p
	}
	path := project(t, `
app "a" { language = "go" }
target "local" {
  provider = "qemu"
  apps     = [app.a]
}
target "vm" {
  provider = "vm"
  apps     = [app.a]
}
target "cloud" {
  provider = "cloud"
  apps     = [app.a]
  boot     = "uefi"
}
target "disk" {
  provider = "qemu"
  apps     = [app.a]
  format   = "vdi"
}
`)
	p, _, diags := Load(path, Options{Catalog: &cat, Environ: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	for _, want := range []struct{ target, format, boot string }{
		{"local", "kernel+initrd", "bios"},
		{"vm", "vmdk", "bios"},
		{"cloud", "gce", "uefi"},
		{"disk", "vdi", "bios"},
	} {
		tg := p.Target(want.target)
		if tg.Format != want.format || tg.Boot != want.boot {
			t.Errorf("target %s: format %q, boot %q; want %q, %q", want.target, tg.Format, tg.Boot, want.format, want.boot)
		}
	}

	// A format the provider does not boot is an error at the format line.
	path = project(t, `
app "a" { language = "go" }
target "vm" {
  provider = "vm"
  apps     = [app.a]
  format   = "vdi"
}
`)
	_, _, diags = Load(path, Options{Catalog: &cat, Environ: noEnv})
	if !diags.HasErrors() || !strings.Contains(diags[0].Detail, `The vm provider cannot boot format "vdi"; it boots: vmdk, gce, qcow2`) || diags[0].Subject.Start.Line != 6 {
		t.Errorf("format the provider cannot boot: %v", diags)
	}
}

package lang

import "testing"

func TestTargetFormatDefaultsPerProvider(t *testing.T) {
	path := project(t, `
app "a" { language = "go" }
target "local" {
  provider = "qemu"
  apps     = [app.a]
}
target "vm" {
  provider = "vsphere"
  apps     = [app.a]
}
target "cloud" {
  provider = "gcp"
  apps     = [app.a]
  boot     = "uefi"
}
target "disk" {
  provider = "qemu"
  apps     = [app.a]
  format   = "vdi"
}
`)
	p, _, diags := Load(path, Options{Environ: noEnv})
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
}

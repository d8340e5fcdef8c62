package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

// Targets booting one app in several disk formats share its compile, its
// kernel+initrd package and, per boot mode, its raw disk; each format is
// one node converting that raw disk.
func TestDiskFormatsDeriveFromOneRawDisk(t *testing.T) {
	p := &lang.Project{
		Dir:  "/p",
		Apps: []*lang.App{{Name: "api", Language: "go", Base: "linux"}},
		Targets: []*lang.Target{
			{Name: "kvm", Provider: "qemu", Apps: []string{"api"}, Format: "qcow2", Boot: "uefi"},
			{Name: "vsphere", Provider: "qemu", Apps: []string{"api"}, Format: "vmdk", Boot: "uefi"},
			{Name: "raw", Provider: "qemu", Apps: []string{"api"}, Format: "raw", Boot: "uefi"},
			{Name: "legacy", Provider: "qemu", Apps: []string{"api"}, Format: "qcow2", Boot: "bios"},
			{Name: "direct", Provider: "qemu", Apps: []string{"api"}, Format: "kernel+initrd"},
		},
	}
	g := UpGraph(p, p.Targets, &Env{})
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	var ids []string
	for _, n := range g.Nodes() {
		ids = append(ids, n.ID)
		deps[n.ID] = n.Deps
	}
	want := []string{
		"build guest init", "compile api", "package api (linux, kernel+initrd)",
		"package api (linux, raw, uefi)", "package api (linux, qcow2, uefi)", "deploy kvm",
		"package api (linux, vmdk, uefi)", "deploy vsphere", "deploy raw",
		"package api (linux, raw, bios)", "package api (linux, qcow2, bios)", "deploy legacy",
		"deploy direct",
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("nodes:\n got %q\nwant %q", ids, want)
	}
	for id, dep := range map[string]string{
		"package api (linux, raw, uefi)":   "package api (linux, kernel+initrd)",
		"package api (linux, raw, bios)":   "package api (linux, kernel+initrd)",
		"package api (linux, qcow2, uefi)": "package api (linux, raw, uefi)",
		"package api (linux, vmdk, uefi)":  "package api (linux, raw, uefi)",
		"package api (linux, qcow2, bios)": "package api (linux, raw, bios)",
		"deploy kvm":                       "package api (linux, qcow2, uefi)",
		"deploy raw":                       "package api (linux, raw, uefi)",
		"deploy direct":                    "package api (linux, kernel+initrd)",
	} {
		if !slices.Equal(deps[id], []string{dep}) {
			t.Errorf("%s depends on %v, want [%s]", id, deps[id], dep)
		}
	}
}

func TestBuildFormatGraph(t *testing.T) {
	p := &lang.Project{Dir: "/p", Apps: []*lang.App{{Name: "a", Language: "go", Base: "linux"}}}
	g := BuildFormatGraph(p, p.Apps, &Env{}, "vhd", "")
	last := g.Nodes()[len(g.Nodes())-1]
	if last.ID != "package a (linux, vhd, bios)" {
		t.Errorf("last node %q; want the vhd of the bios disk (bios is the default)", last.ID)
	}
	for _, tc := range []struct{ format, boot, want string }{
		{"vmdk4", "", `disk format "vmdk4" is not known`},
		{"raw", "efi", `boot mode "efi" is not known; boot modes: bios, uefi`},
	} {
		if err := CheckFormat(tc.format, tc.boot); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckFormat(%q, %q) = %v; want %q", tc.format, tc.boot, err, tc.want)
		}
	}
	if err := CheckFormat("kernel+initrd", ""); err != nil {
		t.Errorf("CheckFormat(kernel+initrd) = %v", err)
	}
}

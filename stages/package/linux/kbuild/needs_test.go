package kbuild

import (
	"slices"
	"strings"
	"testing"
)

func TestNeedsForPlatforms(t *testing.T) {
	for _, c := range []struct {
		name     string
		language string
		p        Platform
		want     []string // features that must be there
		not      []string // features that must not
	}{
		{"go on qemu, direct boot: a microVM", "go", Platform{}, []string{"base", "console", "net", "ipv6", "virtio-net", "virtio-blk", "power-button", "libc", "virtio-mmio", "pvh", "root-disk"}, []string{"pci", "virtio-pci", "efi-stub", "ena", "gve", "vmxnet3"}},
		{"python has the C library's needs", "python", Platform{}, []string{"libc", "virtio-mmio", "pvh", "root-disk"}, []string{"pci"}},
		{"no root disk for disk images", "python", Platform{Format: "qcow2"}, []string{"libc", "pci", "virtio-blk"}, []string{"root-disk"}},
		{"an unknown language gets the C library's needs", "cobol", Platform{}, []string{"libc"}, nil},
		{"a bios disk boots a bzImage on a PC", "go", Platform{Provider: "qemu", Format: "qcow2", Boot: "bios"}, []string{"pci", "virtio-pci"}, []string{"pvh", "virtio-mmio", "efi-stub"}},
		{"a uefi disk needs the EFI stub", "go", Platform{Format: "raw", Boot: "uefi"}, []string{"pci", "virtio-pci", "efi-stub"}, []string{"pvh"}},
		{"gce images get gVNIC and NVMe", "go", Platform{Format: "gce", Boot: "uefi"}, []string{"gve", "nvme", "virtio-scsi", "efi-stub"}, []string{"ena", "vmxnet3"}},
		{"aws gets ENA and NVMe, also booted directly", "go", Platform{Provider: "aws"}, []string{"ena", "nvme", "pci", "virtio-pci"}, []string{"pvh", "virtio-mmio", "gve"}},
		{"vsphere gets vmxnet3 and PVSCSI", "go", Platform{Provider: "vsphere", Format: "vmdk"}, []string{"vmxnet3", "pvscsi", "pci"}, []string{"ena", "gve"}},
	} {
		n, err := NeedsFor(c.language, c.p)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.IsSorted(n.Features) || len(slices.Compact(slices.Clone(n.Features))) != len(n.Features) {
			t.Errorf("%s: features %v are not sorted and unique", c.name, n.Features)
		}
		for _, f := range c.want {
			if !n.Has(f) {
				t.Errorf("%s: %v lacks %s", c.name, n.Features, f)
			}
		}
		for _, f := range c.not {
			if n.Has(f) {
				t.Errorf("%s: %v has %s", c.name, n.Features, f)
			}
		}
	}
}

func TestNeedsForErrors(t *testing.T) {
	if _, err := NeedsFor("go", Platform{Provider: "openstack"}); err == nil || !strings.Contains(err.Error(), "known: aws, gcp, libvirt, qemu, vsphere") {
		t.Errorf("unknown provider: %v", err)
	}
	if _, err := NeedsFor("go", Platform{Format: "qcow2", Boot: "coreboot"}); err == nil || !strings.Contains(err.Error(), "bios or uefi") {
		t.Errorf("unknown boot mode: %v", err)
	}
}

// Two apps with the same needs share a kernel; a platform that needs
// another driver gets another one.
func TestSameNeedsSameKernel(t *testing.T) {
	a, _ := NeedsFor("go", Platform{})
	b, _ := NeedsFor("go", Platform{Provider: "qemu", Format: FormatKernelInitrd})
	if da, db := mustDigest(t, a), mustDigest(t, b); da != db {
		t.Errorf("two Go apps on qemu: digests %s and %s", da, db)
	}
	c, _ := NeedsFor("go", Platform{Format: "qcow2", Boot: "uefi"})
	if mustDigest(t, a) == mustDigest(t, c) {
		t.Error("a uefi disk and a direct boot got the same kernel")
	}
	py, _ := NeedsFor("python", Platform{})
	node, _ := NeedsFor("node", Platform{})
	if mustDigest(t, py) != mustDigest(t, node) {
		t.Error("Python and Node.js need the same kernel, and got two")
	}
	// One kernel per platform: a Go app and an interpreter share it.
	if mustDigest(t, py) != mustDigest(t, a) {
		t.Error("Go and Python on a microVM got two kernels; want one per platform")
	}
	if got := strings.Join(Distinctive(a), " "); got != "pvh root-disk virtio-mmio" {
		t.Errorf("Distinctive = %q", got)
	}
}

func mustDigest(t *testing.T, n Needs) string {
	t.Helper()
	d, err := ConfigDigest(n)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEveryNamedFeatureIsKnown(t *testing.T) {
	lists := [][]string{baseFeatures, {"virtio-mmio", "pvh", "pci", "virtio-pci", "efi-stub", "root-disk", "virtio-blk"}}
	for _, l := range languageFeatures {
		lists = append(lists, l)
	}
	for _, l := range providerFeatures {
		lists = append(lists, l)
	}
	for _, l := range formatFeatures {
		lists = append(lists, l)
	}
	for _, l := range lists {
		for _, f := range l {
			if _, ok := features[f]; !ok {
				t.Errorf("feature %q is used but has no options", f)
			}
		}
	}
}

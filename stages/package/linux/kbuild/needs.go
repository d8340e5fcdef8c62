package kbuild

import (
	"fmt"

	pack "github.com/unikfile/unikfile/stages/package"
	"slices"
	"sort"
	"strings"
)

// Needs is what a kernel must offer one app on one platform: a set of
// named features (the keys of the features table in config.go). Two apps
// with equal Needs share one kernel.
type Needs struct {
	// Features are sorted and unique; NeedsFor makes them so.
	Features []string
}

// Has reports whether the needs include feature f.
func (n Needs) Has(f string) bool {
	_, ok := slices.BinarySearch(n.Features, f)
	return ok
}

// String is the features, comma-separated: how progress lines and
// `unikfile kernel ls` name a kernel.
func (n Needs) String() string { return strings.Join(n.Features, ",") }

// Platform is where an image boots (stages/package's).
type Platform = pack.Platform

// FormatKernelInitrd is the direct-boot format (stages/package's name).
const FormatKernelInitrd = pack.FormatKernelInitrd

// Features every kernel has: what the guest init and a Go program need
// (the init is a static Go program: futex, epoll, eventfd, timers, /proc,
// /sys, devtmpfs, tmpfs), what programs on a C library need (the
// interpreters and the JVM are such programs: System V IPC and POSIX
// message queues, asynchronous I/O, membarrier, rseq, which glibc
// registers), the serial console, an initramfs of the uncompressed cpio
// the linux base writes, IPv4, IPv6 and unix sockets, the virtio NIC and
// disk, and the ACPI power button the init stops the app on.
//
// The C library's needs add little to a Go kernel; having them in
// every kernel makes the kernels of a platform one for every language,
// so a machine builds one kernel per platform instead of one per
// platform and kind of runtime (a kernel build is minutes on two cores;
// the test command builds the tests' kernels on a cold CI machine).
var baseFeatures = []string{"base", "console", "initramfs", "net", "ipv6", "virtio-net", "virtio-blk", "power-button", "libc"}

// languageFeatures is what each language's runtime needs beyond
// baseFeatures: nothing today for any of them (the C library's needs are
// in every kernel, see above). A language whose runtime needs more (say,
// huge pages or another system call family) names those features here;
// a language missing here needs nothing more.
var languageFeatures = map[string][]string{
	"go":     nil,
	"c":      nil,
	"cpp":    nil,
	"rust":   nil,
	"elf":    nil,
	"python": nil,
	"node":   nil,
	"java":   nil,
}

// providerFeatures are the devices of each provider's machines beyond
// virtio's. A provider with none (qemu) boots kernel+initrd images on a
// microVM; every other machine is a PC (PCI, virtio on PCI): libvirt's
// domains, the clouds with their own NICs and disks.
var providerFeatures = map[string][]string{
	"qemu":    nil,
	"libvirt": {"pci"},
	"aws":     {"ena", "nvme"},
	"gcp":     {"gve", "nvme", "virtio-scsi"},
	"vsphere": {"vmxnet3", "pvscsi"},
}

// formatFeatures are what a disk format implies about where it boots: a
// gce image boots on Google's machines whatever the target says.
var formatFeatures = map[string][]string{
	"gce": {"gve", "nvme", "virtio-scsi"},
}

// NeedsFor is the kernel an app in language needs on platform p. It is a
// pure function of its arguments.
func NeedsFor(language string, p Platform) (Needs, error) {
	set := map[string]bool{}
	add := func(fs []string) {
		for _, f := range fs {
			set[f] = true
		}
	}
	add(baseFeatures)
	add(languageFeatures[language])
	provider := p.Provider
	if provider == "" {
		provider = "qemu"
	}
	pf, ok := providerFeatures[provider]
	if !ok {
		return Needs{}, fmt.Errorf("no kernel devices are known for provider %q (known: %s)", provider, strings.Join(sortedKeys(providerFeatures), ", "))
	}
	add(pf)
	// A microVM is qemu booting the kernel file itself: no firmware, no
	// PCI bus; virtio devices on MMIO and the PVH entry point of the
	// uncompressed ELF kernel. Everything else is a PC: firmware (or the
	// provider) loads a bzImage, the devices are on PCI.
	if p.Direct() && len(pf) == 0 {
		// Large bundles (interpreters, JVMs) stay on a read-only disk
		// the kernel reads on demand, instead of in an initramfs it
		// unpacks at every boot.
		add([]string{"virtio-mmio", "pvh", "root-disk"})
	} else {
		add([]string{"pci", "virtio-pci"})
	}
	if !p.Direct() {
		add(formatFeatures[p.Format])
		switch p.Boot {
		case "", "bios":
		case "uefi":
			add([]string{"efi-stub"})
		default:
			return Needs{}, fmt.Errorf("boot mode %q: want bios or uefi", p.Boot)
		}
	}
	n := Needs{Features: make([]string, 0, len(set))}
	for f := range set {
		n.Features = append(n.Features, f)
	}
	sort.Strings(n.Features)
	return n, nil
}

// Distinctive is n's features beyond those every kernel has: what tells
// kernels apart in messages ("pvh virtio-mmio").
func Distinctive(n Needs) []string {
	var out []string
	for _, f := range n.Features {
		if !slices.Contains(baseFeatures, f) {
			out = append(out, f)
		}
	}
	return out
}

// WithFeatures returns n plus extra features (e.g. "root-disk" for an
// image whose root filesystem is a disk), sorted and unique.
func (n Needs) WithFeatures(extra ...string) Needs {
	out := Needs{Features: append([]string(nil), n.Features...)}
	for _, f := range extra {
		if !out.Has(f) {
			out.Features = append(out.Features, f)
			sort.Strings(out.Features)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

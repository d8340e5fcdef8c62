package linux

import (
	"fmt"
	"github.com/unikfile/unikfile/internal/run"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/cache"
)

// KernelEnv names the environment variable that points at a kernel image.
const KernelEnv = "UNIKFILE_KERNEL"

// Kernel is a bootable Linux kernel image and its modules.
type Kernel struct {
	// Path is the kernel image (a bzImage, e.g. /boot/vmlinuz-6.1.0-56-cloud-amd64).
	Path string
	// Version is the kernel release, e.g. 6.1.0-56-cloud-amd64; empty when
	// neither the file name nor the module tree tells it.
	Version string
	// ModulesDir is lib/modules/<version> beside the kernel; empty when the
	// kernel has no module tree (allowed for a kernel the user named, whose
	// drivers are then assumed built in).
	ModulesDir string
	// Digest is the sha256 (hex) of the kernel image.
	Digest string
	// Entry is how a hypervisor enters Path: "" for a bzImage (the Linux
	// boot protocol, PC machines), pack.KernelEntryPVH for an ELF vmlinux
	// with a PVH entry note (any x86 machine, QEMU's microvm too).
	Entry string
	// Bus is where the kernel finds its virtio devices: "" for PCI,
	// pack.BusVirtioMMIO for a microVM's memory-mapped devices.
	Bus string
	// RootFS is the filesystem of root disks the kernel mounts with an
	// overlay over it (RootFSEROFS), or "" when images for it keep
	// everything in the initramfs.
	RootFS string
	// Immutable says nothing rewrites Path in place (the cache's own copy
	// of a kernel image, which is written once and only ever removed), so
	// that an image may hard-link it instead of copying it.
	Immutable bool
	// HZ is the kernel's timer frequency (CONFIG_HZ) as the configuration
	// beside it says (a built kernel's config, Debian's
	// boot/config-<version>); 0 when there is none.
	HZ int
	// Modules are the module files an image of this kernel gets, relative
	// to ModulesDir, once ModulesDigestWith has found them (walking the
	// module tree takes about 10 ms); nil means Build finds them.
	Modules []string
}

// RootFSEROFS is Kernel.RootFS of a kernel with EROFS, overlayfs and
// virtio disks built in.
const RootFSEROFS = "erofs"

// KernelNotFoundError says no kernel was found and how to get one.
type KernelNotFoundError struct {
	// Looked lists the places searched, in order.
	Looked []string
}

func (e *KernelNotFoundError) Error() string {
	return "no Linux kernel found: looked in " + strings.Join(e.Looked, ", ") +
		"; get Debian's cloud kernel with `unikfile kernel fetch` (apt-get download linux-image-cloud-amd64, extracted into the cache), " +
		"set " + KernelEnv + "=/path/to/vmlinuz, or set linux { kernel = \"...\" } in the Unikfile"
}

// ResolveKernel finds the kernel for an image: explicit (the Unikfile's
// linux { kernel }) first, then $UNIKFILE_KERNEL from environ, then the
// newest cacheDir/kernels/*/boot/vmlinuz-* that has its modules (the layout
// FetchKernel writes). A kernel the user named that does not exist
// is an error, not a reason to look elsewhere.
func ResolveKernel(explicit, cacheDir string, environ []string) (*Kernel, error) {
	return ResolveKernelWith(explicit, cacheDir, environ, cache.FileDigest)
}

// Digester returns the sha256 (hex) of a file's content: cache.FileDigest,
// or a cache.StatCache's FileDigest.
type Digester func(path string) (string, error)

// ResolveKernelWith is ResolveKernel digesting the kernel with digest.
func ResolveKernelWith(explicit, cacheDir string, environ []string, digest Digester) (*Kernel, error) {
	if explicit != "" {
		return namedKernelWith(explicit, "linux { kernel } in the Unikfile", digest)
	}
	if p := run.Getenv(environ, KernelEnv); p != "" {
		return namedKernelWith(p, "$"+KernelEnv, digest)
	}
	var looked []string
	looked = append(looked, "$"+KernelEnv+" (unset)")
	if cacheDir == "" {
		return nil, &KernelNotFoundError{Looked: looked}
	}
	pattern := filepath.Join(cacheDir, "kernels", "*", "boot", "vmlinuz-*")
	looked = append(looked, pattern)
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("look for kernels: %w", err)
	}
	// Newest first; the same version in two folders: by path.
	sort.SliceStable(matches, func(i, j int) bool {
		vi, vj := kernelVersionFromName(matches[i]), kernelVersionFromName(matches[j])
		if vi != vj {
			return versionLess(vj, vi)
		}
		return matches[i] < matches[j]
	})
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		k, err := describeKernel(m, digest)
		if err != nil {
			return nil, err
		}
		if k.ModulesDir == "" {
			continue // an incomplete extraction; FetchKernel writes both
		}
		return k, nil
	}
	return nil, &KernelNotFoundError{Looked: looked}
}

// namedKernel is a kernel the user pointed at.
func namedKernel(p, from string) (*Kernel, error) {
	return namedKernelWith(p, from, cache.FileDigest)
}

func namedKernelWith(p, from string, digest Digester) (*Kernel, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, &KernelNotFoundError{Looked: []string{abs + " (from " + from + ")"}}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("kernel %s (from %s) is not a regular file", abs, from)
	}
	return describeKernel(abs, digest)
}

// describeKernel fills a Kernel for the image file at p.
func describeKernel(p string, digest Digester) (*Kernel, error) {
	k := &Kernel{Path: p, Version: kernelVersionFromName(p)}
	dir := filepath.Dir(p)
	root := dir
	if filepath.Base(dir) == "boot" {
		root = filepath.Dir(dir)
	}
	modules := filepath.Join(root, "lib", "modules")
	if k.Version == "" {
		// A bzImage with another name: a single module tree tells the version.
		if entries, err := os.ReadDir(modules); err == nil && len(entries) == 1 && entries[0].IsDir() {
			k.Version = entries[0].Name()
		}
	}
	if k.Version != "" {
		md := filepath.Join(modules, k.Version)
		if fi, err := os.Stat(filepath.Join(md, "kernel")); err == nil && fi.IsDir() {
			k.ModulesDir = md
		}
	}
	d, err := digest(p)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", p, err)
	}
	k.Digest = d
	if k.Version != "" {
		k.HZ = ConfigHZ(filepath.Join(dir, "config-"+k.Version))
	}
	return k, nil
}

// ConfigHZ is CONFIG_HZ in the kernel configuration file at path, or 0
// when the file or the line is missing.
func ConfigHZ(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CONFIG_HZ="); ok {
			if hz, err := strconv.Atoi(v); err == nil && hz > 0 {
				return hz
			}
		}
	}
	return 0
}

// kernelVersionFromName is the suffix after "vmlinuz-", or "".
func kernelVersionFromName(p string) string {
	v, ok := strings.CutPrefix(filepath.Base(p), "vmlinuz-")
	if !ok {
		return ""
	}
	return v
}

// versionLess orders kernel versions the way `sort -V` does: runs of digits
// compare as numbers, everything else byte by byte.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ai, bi := chunk(a), chunk(b)
		ca, cb := a[:ai], b[:bi]
		a, b = a[ai:], b[bi:]
		if ca == cb {
			continue
		}
		da, db := isDigit(ca[0]), isDigit(cb[0])
		if da && db {
			na, nb := strings.TrimLeft(ca, "0"), strings.TrimLeft(cb, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			return len(ca) < len(cb)
		}
		return ca < cb
	}
	return len(a) < len(b)
}

// chunk is the length of the leading run of digits or of non-digits.
func chunk(s string) int {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

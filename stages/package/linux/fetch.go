package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
)

// DefaultKernelPackage is the Debian package FetchKernel installs by
// default: the cloud flavour, small and with the virtio, ENA, gVNIC and
// vmxnet3 drivers as modules.
const DefaultKernelPackage = "linux-image-cloud-amd64"

const aptHint = "fetching a kernel uses apt (Debian, or a system with Debian's archive configured); elsewhere set UNIKFILE_KERNEL to a vmlinuz"

// FetchKernel downloads a Debian kernel package with apt-get (which checks
// it against the archive's signed index) and extracts its kernel and
// modules into cacheDir/kernels/<version>, the layout ResolveKernel reads.
// Nothing is installed into /boot or /lib/modules. pkg is a meta package
// such as linux-image-cloud-amd64 (resolved to the versioned package it
// depends on) or a versioned package. An existing complete entry is kept.
func FetchKernel(ctx context.Context, cacheDir, pkg string, say func(string)) (*Kernel, error) {
	if pkg == "" {
		pkg = DefaultKernelPackage
	}
	versioned, err := versionedPackage(ctx, pkg)
	if err != nil {
		return nil, err
	}
	kver := strings.TrimPrefix(versioned, "linux-image-")
	dest := filepath.Join(cacheDir, "kernels", kver)
	vmlinuz := filepath.Join(dest, "boot", "vmlinuz-"+kver)
	if k, err := namedKernel(vmlinuz, "the kernel cache"); err == nil && k.ModulesDir != "" {
		say(fmt.Sprintf("kernel %s is already in %s", kver, dest))
		return k, nil
	}
	if err := os.MkdirAll(filepath.Join(cacheDir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(cacheDir, "tmp"), fmt.Sprintf("%d-kernel-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	say(fmt.Sprintf("downloading %s", versioned))
	if _, err := run.Run(ctx, run.Cmd{Path: "apt-get", Args: []string{"download", versioned}, Dir: tmp, Hint: aptHint}); err != nil {
		return nil, fmt.Errorf("download %s: %w", versioned, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("download %s: expected one .deb in %s, found %d", versioned, tmp, len(debs))
	}
	say(fmt.Sprintf("extracting %s", filepath.Base(debs[0])))
	x := filepath.Join(tmp, "x")
	if _, err := run.Run(ctx, run.Cmd{Path: "dpkg-deb", Args: []string{"-x", debs[0], x}, Hint: aptHint}); err != nil {
		return nil, fmt.Errorf("extract %s: %w", filepath.Base(debs[0]), err)
	}
	// Assemble the entry beside its final place, then rename it in whole.
	entry := filepath.Join(tmp, "entry")
	if err := os.MkdirAll(filepath.Join(entry, "lib"), 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(x, "boot"), filepath.Join(entry, "boot")); err != nil {
		return nil, fmt.Errorf("%s has no boot/ folder: %w", versioned, err)
	}
	modules := filepath.Join(x, "lib", "modules")
	if _, err := os.Stat(modules); errors.Is(err, os.ErrNotExist) {
		modules = filepath.Join(x, "usr", "lib", "modules") // merged-/usr layouts
	}
	if err := os.Rename(modules, filepath.Join(entry, "lib", "modules")); err != nil {
		return nil, fmt.Errorf("%s has no modules folder: %w", versioned, err)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dest); err != nil { // an incomplete earlier entry
		return nil, err
	}
	if err := os.Rename(entry, dest); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("kernel %s is in %s", kver, dest))
	return namedKernel(vmlinuz, "the kernel cache")
}

// versionedPackage resolves a meta package (linux-image-cloud-amd64) to the
// versioned image package it depends on; a versioned name is returned as is.
func versionedPackage(ctx context.Context, pkg string) (string, error) {
	res, err := run.Run(ctx, run.Cmd{Path: "apt-cache", Args: []string{"depends", pkg}, Hint: aptHint})
	var failed *run.Error
	if errors.As(err, &failed) && ctx.Err() == nil {
		return "", fmt.Errorf("apt does not know %s; run `apt-get update` first: %w", pkg, err)
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") && isDigit(f[1][len("linux-image-")]) {
			return f[1], nil
		}
	}
	if len(pkg) > len("linux-image-") && isDigit(pkg[len("linux-image-")]) {
		return pkg, nil
	}
	return "", fmt.Errorf("apt lists no versioned kernel package behind %s; run `apt-get update`, or name a versioned package such as linux-image-6.1.0-56-cloud-amd64", pkg)
}

// CachedKernels lists the kernels in cacheDir/kernels, newest first.
func CachedKernels(cacheDir string) ([]*Kernel, error) {
	paths, err := filepath.Glob(filepath.Join(cacheDir, "kernels", "*", "boot", "vmlinuz-*"))
	if err != nil {
		return nil, err
	}
	var out []*Kernel
	for _, p := range paths {
		if k, err := namedKernel(p, "the kernel cache"); err == nil {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[j].Version, out[i].Version) })
	return out, nil
}

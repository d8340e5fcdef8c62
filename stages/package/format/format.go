package format

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
)

// Format is one disk format.
type Format struct {
	Name string
	// File is the disk's file name inside the image directory.
	File string
	// QEMU is the format's name for qemu-img and QEMU's -drive; "" when
	// QEMU cannot open the file as a disk (gce, a tar.gz).
	QEMU string
	// Platforms are the hypervisors and clouds that take the format.
	Platforms string
	// write makes out from the raw disk at raw; it returns the size of the
	// disk the guest sees. nil for raw, which is the disk stage's output.
	write func(ctx context.Context, w *writer) (int64, error)
}

// Names of the formats.
const (
	Raw        = disk.FormatRaw
	QCOW2      = "qcow2"
	VMDK       = "vmdk"        // streamOptimized
	VMDKSparse = "vmdk-sparse" // monolithicSparse
	VHD        = "vhd"         // fixed
	VDI        = "vdi"
	GCE        = "gce"
)

// Formats is the table of disk formats.
var Formats = []Format{
	{Name: Raw, File: disk.File, QEMU: "raw", Platforms: "QEMU/KVM, libvirt, AWS (import-snapshot), OpenStack"},
	{Name: QCOW2, File: "disk.qcow2", QEMU: "qcow2", Platforms: "QEMU/KVM, libvirt, OpenStack, Proxmox", write: qcow2},
	{Name: VMDK, File: "disk.vmdk", QEMU: "vmdk", Platforms: "vSphere/ESXi (OVA, content library), AWS import", write: vmdkStream},
	{Name: VMDKSparse, File: "disk.vmdk", QEMU: "vmdk", Platforms: "VMware Workstation/Fusion, VirtualBox", write: vmdkSparse},
	{Name: VHD, File: "disk.vhd", QEMU: "vpc", Platforms: "Azure, Hyper-V, AWS import", write: vhdFixed},
	{Name: VDI, File: "disk.vdi", QEMU: "vdi", Platforms: "VirtualBox", write: vdi},
	{Name: GCE, File: "disk.tar.gz", Platforms: "Google Compute Engine (image import from Cloud Storage)", write: gce},
}

// Lookup returns the format named name.
func Lookup(name string) (Format, bool) {
	for _, f := range Formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Names lists the disk formats, sorted.
func Names() []string {
	var n []string
	for _, f := range Formats {
		n = append(n, f.Name)
	}
	sort.Strings(n)
	return n
}

// UnknownError names a format that is not in the table.
func UnknownError(name string) error {
	return fmt.Errorf("disk format %q is not known; formats: %s, %s", name, pack.FormatKernelInitrd, strings.Join(Names(), ", "))
}

// qemuImgHint is how to get qemu-img.
const qemuImgHint = "install it: apt-get install qemu-utils"

// ToolDigest identifies the converter of a format for cache keys: the
// digest of the qemu-img binary for the formats it writes, "" for the
// formats written in Go.
func ToolDigest(name string) (string, error) {
	f, ok := Lookup(name)
	if !ok {
		return "", UnknownError(name)
	}
	if f.write == nil || f.Name == GCE {
		return "", nil
	}
	p, err := run.Look("qemu-img", qemuImgHint)
	if err != nil {
		return "", err
	}
	d, _, err := pack.FileDigest(p)
	return d, err
}

// Convert writes outDir/F.File in format name from the raw disk image in
// rawDir (described by raw), and outDir/pack.ImageFile (last).
func Convert(ctx context.Context, raw *pack.Image, rawDir, name, outDir string) (*pack.Image, error) {
	f, ok := Lookup(name)
	if !ok {
		return nil, UnknownError(name)
	}
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("convert %s disk of %s to %s: %w", raw.Boot, raw.App, name, err)
	}
	if raw.Format != Raw || raw.Disk == "" {
		return fail(fmt.Errorf("the source image is %q, not a raw disk", raw.Format))
	}
	if f.write == nil {
		return fail(errors.New("a raw disk is made by the disk stage, not converted"))
	}
	w := &writer{
		raw:  filepath.Join(rawDir, raw.Disk),
		out:  filepath.Join(outDir, f.File),
		seed: raw.Digest,
		work: outDir,
	}
	vsize, err := f.write(ctx, w)
	if err != nil {
		_ = os.Remove(w.out)
		return fail(err)
	}
	digest, size, err := pack.FileDigest(w.out)
	if err != nil {
		return fail(err)
	}
	img := *raw
	img.Ports = append([]int(nil), raw.Ports...)
	img.Format, img.Disk, img.Digest, img.Size, img.VirtualSize = name, f.File, digest, size, vsize
	img.Deterministic = true
	if err := disk.WriteImage(outDir, &img); err != nil {
		return fail(err)
	}
	return &img, nil
}

// writer is one conversion.
type writer struct {
	raw, out string
	// seed is the raw disk's digest, from which identifiers are derived.
	seed string
	work string
}

// derive is 16 bytes derived from the seed for the named identifier.
func (w *writer) derive(what string) []byte {
	h := sha256.Sum256([]byte("unikfile format " + what + " " + w.seed))
	return h[:16]
}

func (w *writer) qemuImg(ctx context.Context, args ...string) error {
	_, err := run.Run(ctx, run.Cmd{Path: "qemu-img", Args: args, Hint: qemuImgHint, Env: run.Environ("LC_ALL=C")})
	return err
}

// convert runs qemu-img convert from the raw disk to out.
func (w *writer) convert(ctx context.Context, format string, opts string) error {
	args := []string{"convert", "-f", "raw", "-O", format}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	return w.qemuImg(ctx, append(args, w.raw, w.out)...)
}

func (w *writer) rawSize() (int64, error) {
	fi, err := os.Stat(w.raw)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

package osv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unikfile/unikfile/internal/atomicfile"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/osv/rofs"
)

// FormatDirect is the format of OSv's direct-boot images, the one name
// every base's direct-boot images share: the kernel, loaded by the
// hypervisor (QEMU's -kernel) with the command line (-append), and, in
// place of an initramfs, the root file system's disk (pack.Image.RootDisk),
// attached as the first virtio block device.
const FormatDirect = pack.FormatKernelInitrd

// Files of an image directory.
const (
	KernelFile = "kernel"     // a copy of the direct-boot kernel
	RootFile   = "rootfs.img" // the MBR, then the ROFS (partition #2) from sector 1
)

// rofsStart is the direct-boot disk's partition start (LBA): the sector
// after the MBR, as in OSv's own kernel-less disks.
const rofsStart = 1

// Memory.
const (
	// DefaultMemoryMiB is the least memory an image gets when the caller
	// gives none: a C or Go server runs in 64 MiB under TCG.
	DefaultMemoryMiB = 128
	// kernelMemoryMiB is about what OSv itself takes.
	kernelMemoryMiB = 64
)

// minMemoryMiB is the least guest memory for a root file system of size
// bytes: OSv's ROFS keeps every block it read in memory, and programs are
// mapped from there.
func minMemoryMiB(size int64) int {
	return kernelMemoryMiB + int((size+(1<<20)-1)>>20)
}

// Input is what an image is made of.
type Input struct {
	App string
	// BundleRoot is the app bundle's tree, placed at / in the image.
	BundleRoot string
	// Command is what OSv runs; a zero Net means QEMUUserNet (direct boot
	// is for QEMU and hypervisors like it), and HOME=/ and
	// PATH=/usr/local/bin:/usr/bin:/bin are set unless Env has them.
	Command Command
	Kernel  *Kernel
	Ports   []int
	// MemoryMiB is the guest's memory; 0 means what the image needs, at
	// least DefaultMemoryMiB.
	MemoryMiB int
	// CACerts is a CA bundle to place at HostCACerts when the bundle has
	// none; "" means HostCACerts on this host, if present.
	CACerts string
	// ReadyHelper is the readiness helper (BuildReady), which an app with
	// Ports needs.
	ReadyHelper string
}

// Build writes the direct-boot image directory outDir: KernelFile,
// RootFile, KernelRefFile and pack.ImageFile (last, so that a directory
// with an image.json is complete). The same Input gives the same bytes and digest.
func Build(ctx context.Context, in Input, outDir string) (*pack.Image, error) {
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("package %s (osv): %w", in.App, err)
	}
	if in.Kernel == nil || in.Kernel.Loader == "" {
		return fail(errors.New("no kernel: call ResolveKernel first"))
	}
	cmd := in.Command
	if (cmd.Net == Net{}) {
		cmd.Net = QEMUUserNet
	}
	cmd.Env = withDefaults(cmd.Env)
	ready := ""
	if len(in.Ports) > 0 {
		if in.ReadyHelper == "" {
			return fail(errNoReady)
		}
		ready, cmd.ReadyPorts = in.ReadyHelper, append([]int(nil), in.Ports...)
	}
	cmdline, err := Cmdline(cmd)
	if err != nil {
		return fail(err)
	}
	fsys, err := Layout(in.BundleRoot, in.Kernel, in.CACerts, ready)
	if err != nil {
		return fail(err)
	}
	if exists, isDir := fsys.Lookup(cmd.Argv[0]); !exists || isDir {
		return fail(fmt.Errorf("the program %s is not a file in the image", cmd.Argv[0]))
	}
	mem, err := memory(in.MemoryMiB, fsys.Size())
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	// An older image.json must not vouch for the files being replaced.
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	rootDigest, err := writeAtomic(ctx, filepath.Join(outDir, RootFile), func(w io.Writer) error {
		return writeRootDisk(w, fsys)
	})
	if err != nil {
		return fail(fmt.Errorf("write the root file system: %w", err))
	}
	kernelDigest, err := writeAtomic(ctx, filepath.Join(outDir, KernelFile), func(w io.Writer) error {
		return copyFrom(w, in.Kernel.Loader)
	})
	if err != nil {
		return fail(fmt.Errorf("copy the kernel: %w", err))
	}
	if in.Kernel.LoaderDigest != "" && kernelDigest != in.Kernel.LoaderDigest {
		return fail(fmt.Errorf("kernel %s changed since it was resolved (sha256 %s, was %s)", in.Kernel.Loader, kernelDigest, in.Kernel.LoaderDigest))
	}
	fi, err := os.Stat(filepath.Join(outDir, RootFile))
	if err != nil {
		return fail(err)
	}
	img := &pack.Image{
		App:           in.App,
		Base:          "osv",
		Format:        FormatDirect,
		Kernel:        KernelFile,
		RootDisk:      RootFile,
		Cmdline:       cmdline,
		KernelVersion: in.Kernel.Version,
		Digest:        ImageDigest(kernelDigest, rootDigest, cmdline),
		MemoryMiB:     mem,
		Ports:         append([]int(nil), in.Ports...),
		Size:          fi.Size(),
		VirtualSize:   fi.Size(),
		Deterministic: true,
		Console:       Console(len(in.Ports) > 0),
	}
	if err := writeKernelRef(outDir, in.Kernel); err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(outDir, pack.ImageFile), img, 0o644); err != nil {
		return fail(err)
	}
	return img, nil
}

// withDefaults adds HOME and PATH unless env has them, as the linux
// base's init does.
func withDefaults(env []string) []string {
	out := append([]string(nil), env...)
	for _, d := range []string{"HOME=/", "PATH=/usr/local/bin:/usr/bin:/bin"} {
		k, _, _ := strings.Cut(d, "=")
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			out = append(out, d)
		}
	}
	return out
}

// memory is the guest memory: asked, or what the image needs.
func memory(asked int, rootSize int64) (int, error) {
	need := minMemoryMiB(rootSize)
	switch {
	case asked < 0:
		return 0, fmt.Errorf("memory %d MiB is negative", asked)
	case asked == 0:
		return max(DefaultMemoryMiB, (need+63)/64*64), nil
	case asked < need:
		return 0, fmt.Errorf("memory %d MiB is too small for a root file system of %d MiB, which OSv keeps in memory as it reads it: give the app at least %d MiB (memory = \"%dMiB\")",
			asked, rootSize>>20, need, need)
	}
	return asked, nil
}

// writeRootDisk writes the direct-boot disk: the MBR, then the ROFS as
// partition #2 from sector 1.
func writeRootDisk(w io.Writer, fsys *rofs.FS) error {
	size := fsys.Size()
	if size/sector > 1<<32-1-rofsStart {
		return fmt.Errorf("the root file system is %d bytes, more than an MBR partition holds", size)
	}
	mbr := make([]byte, sector)
	setPartition(mbr, rofsStart, uint32(size/sector))
	if _, err := w.Write(mbr); err != nil {
		return err
	}
	_, err := fsys.WriteTo(w)
	return err
}

// ImageDigest is a direct-boot image's identity: sha256 over the kernel's
// digest, the root disk's digest and the command line.
func ImageDigest(kernelDigest, rootDigest, cmdline string) string {
	h := sha256.New()
	fmt.Fprintf(h, "osv kernel sha256:%s\nrootfs sha256:%s\ncmdline %s\n", kernelDigest, rootDigest, cmdline)
	return hex.EncodeToString(h.Sum(nil))
}

func copyFrom(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// writeAtomic writes p through fill into a temporary file beside it and
// renames it into place; it returns the sha256 of what was written.
func writeAtomic(ctx context.Context, p string, fill func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".partial-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	h := sha256.New()
	if err := fill(&ctxWriter{ctx: ctx, w: io.MultiWriter(f, h)}); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxWriter stops a long write when the context is cancelled.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(b)
}

package linux

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/unikfile/unikfile/guest"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Compression of the initramfs.
const (
	CompressionNone = "none"
	CompressionGzip = "gzip"
	// DefaultCompression is what an empty Input.Compression means. Under
	// QEMU's TCG the kernel unpacks an uncompressed initramfs in 0.1-0.2 s
	// and a gzip one in 0.3-0.5 s, and loading the larger file costs QEMU
	// nothing measurable; see the timings in boot_qemu_test.go. gzip
	// halves the image for uploads to clouds.
	DefaultCompression = CompressionNone
)

// HostCACerts is the host's CA bundle, copied into images so that apps can
// make HTTPS calls (Debian's path, which Go, OpenSSL and others read).
const HostCACerts = "/etc/ssl/certs/ca-certificates.crt"

// DHCPTimeoutMillis bounds the guest's DHCP before it falls back to
// guest.QEMUUserNet: QEMU and the clouds answer in milliseconds.
const DHCPTimeoutMillis = 1500

// DefaultNet is the guest's network setup unless the caller chose one:
// DHCP, which QEMU's user networking and the clouds answer, and QEMU's
// user-network addresses when no answer comes within DHCPTimeoutMillis.
func DefaultNet() guest.Net {
	static := guest.QEMUUserNet
	static.DNS = append([]string(nil), static.DNS...)
	return guest.Net{DHCP: true, DHCPTimeoutMillis: DHCPTimeoutMillis, Static: &static}
}

// DefaultMemoryMiB is the guest memory when Input.MemoryMiB is 0.
const DefaultMemoryMiB = 256

// kernelMemoryMiB is about what Debian's cloud kernel needs for itself.
const kernelMemoryMiB = 96

// minMemoryMiB is the least guest memory for an initramfs of size bytes:
// the kernel's own, plus the archive and its unpacked copy, which are both
// in memory while the kernel unpacks it.
func minMemoryMiB(size int64) int {
	return kernelMemoryMiB + int((2*size+(1<<20)-1)>>20)
}

// Files of an image directory.
const (
	KernelFile = "kernel"
	InitrdFile = "initrd"
	RootFile   = "root.erofs"
)

// RootDiskMinBytes is the bundle size from which an image whose kernel
// mounts root disks (Kernel.RootFS) keeps the app on a read-only EROFS
// disk rather than in the initramfs: the kernel then unpacks only the
// init, and the app reads what it uses. Below it the initramfs is as
// fast (see docs/benchmarks.md).
const RootDiskMinBytes = 16 << 20

// RootDevice is the root disk in the guest: the first virtio disk.
const RootDevice = "/dev/vda"

// baseCmdline is the kernel command line before Input.ExtraCmdline:
//   - console=ttyS0: the console (kernel messages, the init, the app) on the
//     first serial port, which every hypervisor can log;
//   - quiet: few kernel messages, each of which is slow on an emulated UART;
//   - panic=-1: reboot at once on a panic (QEMU run with -no-reboot exits);
//   - rdinit=/init: the guest init in the initramfs;
//   - cryptomgr.notests: skip the boot-time self-tests of the crypto
//     algorithms (Kata Containers does the same). Under QEMU's TCG they took
//     about 0.4 s of a 2.5 s kernel boot; fips=1 still runs them.
//
// Measured and left out, since each changed boot time by less than 1% under
// TCG: tsc=reliable, no_timer_check, i8042.noaux, i8042.nokbd,
// 8250.nr_uarts=1, audit=0, noreplace-smp.
var baseCmdline = []string{
	"console=ttyS0",
	"quiet",
	"panic=-1",
	"rdinit=/init",
	"cryptomgr.notests",
}

// Input is what an image is made of.
type Input struct {
	// BundleRoot is the app bundle's tree, placed at / in the image.
	BundleRoot string
	// Config is the guest init's configuration. The caller fills App, Argv,
	// Env, Dir and Ports; Build fills Modules, and Net when the caller left
	// it zero (DefaultNet).
	Config guest.Config
	// Kernel is from ResolveKernel.
	Kernel *Kernel
	// InitBinary is the guest init, from guest.Build.
	InitBinary string
	// ExtraCmdline is appended to the kernel command line (e.g.
	// "unikfile.verbose").
	ExtraCmdline string
	// MemoryMiB is the guest's memory; 0 means DefaultMemoryMiB.
	MemoryMiB int
	// Compression is CompressionNone or CompressionGzip; "" means
	// DefaultCompression.
	Compression string
	// CACerts is a CA bundle to place at HostCACerts in the image when the
	// bundle has none; "" means HostCACerts on this host, if present.
	CACerts string
}

// Build writes the image directory outDir: KernelFile (the kernel: a
// copy, or a hard link of an Immutable one), InitrdFile (the initramfs) and pack.ImageFile (the returned
// image, as JSON). Each file is written atomically, image.json last, so a
// directory with an image.json is complete. The same Input gives the same
// bytes and the same digest.
func Build(ctx context.Context, in Input, outDir string) (*pack.Image, error) {
	app := in.Config.App
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("package %s (linux): %w", app, err)
	}
	if err := in.check(); err != nil {
		return fail(err)
	}
	compression := in.Compression
	if compression == "" {
		compression = DefaultCompression
	}

	cfg := in.Config
	cfg.Modules = nil
	var moduleFiles []string
	if in.Kernel.ModulesDir != "" {
		rels := in.Kernel.Modules
		if rels == nil {
			var err error
			if rels, err = imageModules(in.Kernel.ModulesDir); err != nil {
				return fail(err)
			}
		}
		moduleFiles = rels
		for _, r := range rels {
			cfg.Modules = append(cfg.Modules, path.Join(modulesImageDir(in.Kernel), r))
		}
	}
	if reflect.DeepEqual(cfg.Net, guest.Net{}) {
		cfg.Net = DefaultNet()
	}

	t, err := in.tree(cfg, moduleFiles)
	if err != nil {
		return fail(err)
	}
	mem := in.MemoryMiB
	if mem == 0 {
		mem = DefaultMemoryMiB
	}
	size, err := t.size()
	if err != nil {
		return fail(err)
	}
	var root *tree
	if in.Kernel.RootFS == RootFSEROFS && size >= RootDiskMinBytes {
		cfg.Root = &guest.Root{Device: RootDevice, FSType: in.Kernel.RootFS}
		if t, err = in.tree(cfg, moduleFiles); err != nil {
			return fail(err)
		}
		if t, root, err = splitRoot(t); err != nil {
			return fail(err)
		}
		if size, err = t.size(); err != nil {
			return fail(err)
		}
	}
	if need := minMemoryMiB(size); mem < need {
		return fail(fmt.Errorf("memory %d MiB is too small for an initramfs of %d MiB, which the guest holds in RAM twice while unpacking it: give the app at least %d MiB (memory = \"%dMiB\")",
			mem, size>>20, need, need))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	// An older image.json must not vouch for the files being replaced.
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	initrdDigest, err := writeAtomic(ctx, filepath.Join(outDir, InitrdFile), func(w io.Writer) error {
		return writeInitramfs(w, t, compression)
	})
	if err != nil {
		return fail(fmt.Errorf("write initramfs: %w", err))
	}
	kernelDigest, err := placeKernel(ctx, in.Kernel, filepath.Join(outDir, KernelFile))
	if err != nil {
		return fail(fmt.Errorf("copy kernel: %w", err))
	}
	if in.Kernel.Digest != "" && kernelDigest != in.Kernel.Digest {
		return fail(fmt.Errorf("kernel %s changed since it was resolved (sha256 %s, was %s)", in.Kernel.Path, kernelDigest, in.Kernel.Digest))
	}

	var rootDigest string
	if root != nil {
		// The volume's UUID is derived from what the image holds.
		uuid := sha256.Sum256([]byte(app + "\x00" + initrdDigest))
		if rootDigest, err = writeAtomic(ctx, filepath.Join(outDir, RootFile), func(w io.Writer) error {
			return root.writeEROFS(w, [16]byte(uuid[:16]))
		}); err != nil {
			return fail(fmt.Errorf("write root disk: %w", err))
		}
	}

	cmdline := Cmdline(in.ExtraCmdline)
	img := &pack.Image{
		App:           app,
		Base:          "linux",
		Format:        "kernel+initrd",
		Kernel:        KernelFile,
		Initrd:        InitrdFile,
		Cmdline:       cmdline,
		KernelVersion: in.Kernel.Version,
		Digest:        imageDigest(kernelDigest, initrdDigest, rootDigest, cmdline),
		MemoryMiB:     mem,
		Ports:         append([]int(nil), cfg.Ports...),
		KernelEntry:   in.Kernel.Entry,
		Bus:           in.Kernel.Bus,
		KernelHZ:      in.Kernel.HZ,
	}
	if root != nil {
		img.RootDisk = RootFile
	}
	js, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fail(err)
	}
	if _, err := writeAtomic(ctx, filepath.Join(outDir, pack.ImageFile), func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	}); err != nil {
		return fail(err)
	}
	return img, nil
}

func (in *Input) check() error {
	if in.Kernel == nil || in.Kernel.Path == "" {
		return errors.New("no kernel: call ResolveKernel first")
	}
	if len(in.Config.Argv) == 0 || in.Config.Argv[0] == "" {
		return errors.New("the app has no command (argv is empty)")
	}
	switch in.Compression {
	case "", CompressionNone, CompressionGzip:
	default:
		return fmt.Errorf("initramfs compression %q: want %q or %q", in.Compression, CompressionNone, CompressionGzip)
	}
	if in.MemoryMiB < 0 {
		return fmt.Errorf("memory %d MiB is negative", in.MemoryMiB)
	}
	fi, err := os.Stat(in.InitBinary)
	if err != nil {
		return fmt.Errorf("guest init: %w (build it with guest.Build)", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("guest init %s is not a regular file", in.InitBinary)
	}
	if in.BundleRoot != "" {
		fi, err := os.Stat(in.BundleRoot)
		if err != nil {
			return fmt.Errorf("app bundle: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("app bundle %s is not a directory", in.BundleRoot)
		}
	}
	return nil
}

// modulesImageDir is where modules go in the image: /lib/modules/<release>.
func modulesImageDir(k *Kernel) string {
	return "/lib/modules/" + filepath.Base(k.ModulesDir)
}

// Paths the base owns; a bundle that has them is refused.
const (
	initPath   = "/init"
	consoleDev = "/dev/console"
)

// pseudoDirs are mount points the init mounts on; tmp is world-writable.
var pseudoDirs = map[string]uint32{"/proc": 0o555, "/sys": 0o555, "/dev": 0o755, "/tmp": 0o1777, "/run": 0o755}

// tree assembles the initramfs: the bundle, then what the base adds.
func (in *Input) tree(cfg guest.Config, moduleFiles []string) (*tree, error) {
	t := newTree()
	const bundle = "the app bundle"
	if in.BundleRoot != "" {
		if err := t.addHostTree(in.BundleRoot, bundle); err != nil {
			return nil, err
		}
	}
	for _, owned := range []string{initPath, guest.ConfigPath} {
		if t.has(owned) {
			return nil, fmt.Errorf("the app bundle has %s, which the linux base writes; remove it from the bundle", owned)
		}
	}
	const base = "the linux base"
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	type addition struct {
		p       string
		n       *node
		replace bool
	}
	adds := []addition{
		{initPath, &node{kind: kindFile, perm: 0o755, src: in.InitBinary, from: base + " (guest init)"}, false},
		{guest.ConfigPath, &node{kind: kindFile, perm: 0o644, data: append(js, '\n'), from: base}, false},
		// The init rewrites /etc/hosts with the address it gets; this one
		// is for the time before.
		{"/etc/hosts", &node{kind: kindFile, perm: 0o644, data: []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"), from: base}, true},
		// The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
		{consoleDev, &node{kind: kindCharDev, perm: 0o600, major: 5, minor: 1, from: base}, false},
	}
	for p, perm := range pseudoDirs {
		adds = append(adds, addition{p, &node{kind: kindDir, perm: perm, from: base}, false})
	}
	for _, r := range moduleFiles {
		src := filepath.Join(in.Kernel.ModulesDir, filepath.FromSlash(r))
		adds = append(adds, addition{path.Join(modulesImageDir(in.Kernel), r), &node{kind: kindFile, perm: 0o644, src: src, from: base + " (kernel modules)"}, false})
	}
	if !t.has(HostCACerts) {
		ca := in.CACerts
		if ca == "" {
			if _, err := os.Stat(HostCACerts); err == nil {
				ca = HostCACerts
			}
		}
		if ca != "" {
			if _, err := os.Stat(ca); err != nil {
				return nil, fmt.Errorf("CA certificates: %w", err)
			}
			adds = append(adds, addition{HostCACerts, &node{kind: kindFile, perm: 0o644, src: ca, from: base + " (CA certificates from " + ca + ")"}, false})
		}
	}
	for _, a := range adds {
		if err := t.put(a.p, a.n, a.replace); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// splitRoot splits an image's tree into the initramfs (the init, its
// configuration, the console device and the mount points the init
// needs before the switch) and the root disk (everything else, with the
// mount points the app's root needs).
func splitRoot(t *tree) (initramfs, root *tree, err error) {
	initramfs = newTree()
	for _, p := range []string{initPath, guest.ConfigPath, consoleDev} {
		c, _ := cleanPath(p)
		n, ok := t.nodes[c]
		if !ok {
			return nil, nil, fmt.Errorf("split the root: %s is missing", p)
		}
		if err := initramfs.put(p, n, false); err != nil {
			return nil, nil, err
		}
		delete(t.nodes, c)
	}
	for p, perm := range pseudoDirs {
		if err := initramfs.put(p, &node{kind: kindDir, perm: perm, from: "the linux base"}, false); err != nil {
			return nil, nil, err
		}
	}
	// The configuration's folder is the init's; the root keeps /etc.
	return initramfs, t, nil
}

// writeInitramfs writes the tree as a cpio archive, compressed or not.
func writeInitramfs(w io.Writer, t *tree, compression string) error {
	if compression != CompressionGzip {
		return t.writeCPIO(w)
	}
	// No name and a zero time in the header: the same bytes every time.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := t.writeCPIO(zw); err != nil {
		return err
	}
	return zw.Close()
}

// Cmdline is the kernel command line of an image, with extra appended.
func Cmdline(extra string) string {
	parts := append([]string(nil), baseCmdline...)
	if f := strings.Fields(extra); len(f) > 0 {
		parts = append(parts, f...)
	}
	return strings.Join(parts, " ")
}

// ImageDigest is the image's identity: sha256 over the kernel's digest, the
// initrd's digest and the command line.
func ImageDigest(kernelDigest, initrdDigest, cmdline string) string {
	return imageDigest(kernelDigest, initrdDigest, "", cmdline)
}

// imageDigest is ImageDigest with a root disk's digest ("" when none).
func imageDigest(kernelDigest, initrdDigest, rootDigest, cmdline string) string {
	h := sha256.New()
	fmt.Fprintf(h, "kernel sha256:%s\ninitrd sha256:%s\n", kernelDigest, initrdDigest)
	if rootDigest != "" {
		fmt.Fprintf(h, "root sha256:%s\n", rootDigest)
	}
	fmt.Fprintf(h, "cmdline %s\n", cmdline)
	return hex.EncodeToString(h.Sum(nil))
}

// writeAtomic writes path through fill into a temporary file beside it and
// renames it into place; it returns the sha256 of what was written.
func writeAtomic(ctx context.Context, p string, fill func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".partial-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	h := sha256.New()
	w := &ctxWriter{ctx: ctx, w: io.MultiWriter(f, h)}
	if err := fill(w); err != nil {
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
	return hexSum(h), nil
}

// placeKernel puts k's image at p and returns its digest. A kernel
// nothing rewrites in place (Kernel.Immutable) is hard-linked: an image
// then costs no copy of its kernel (14 MiB for Debian's, per image) and
// no time writing it. Anything else is copied, since a user's kernel
// file may be rewritten where it is, and so is an immutable one the
// link cannot reach (another filesystem).
func placeKernel(ctx context.Context, k *Kernel, p string) (string, error) {
	if k.Immutable && k.Digest != "" {
		if fi, err := os.Lstat(k.Path); err == nil && fi.Mode().IsRegular() {
			os.Remove(p)
			if os.Link(k.Path, p) == nil {
				return k.Digest, nil
			}
		}
	}
	return copyFile(ctx, k.Path, p)
}

// copyFile copies src to dst atomically and returns the copy's digest.
func copyFile(ctx context.Context, src, dst string) (string, error) {
	return writeAtomic(ctx, dst, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

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

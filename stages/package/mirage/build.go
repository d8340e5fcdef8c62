package mirage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/compile"
	pack "github.com/unikfile/unikfile/stages/package"
)

// KernelFile is the unikernel's copy in an image directory.
const KernelFile = "kernel"

// DefaultMemoryMiB is a Solo5 unikernel's memory when the app sets none:
// the TCP/HTTP example runs in 32 MiB; 128 leaves room for an app's heap.
const DefaultMemoryMiB = 128

// maxMemoryMiB is what Solo5's virtio bindings use at most (their page
// tables map 1 GiB).
const maxMemoryMiB = 1024

// Input is what an image is made of.
type Input struct {
	App string
	// BundleRoot is the app bundle's tree (language "ocaml"), which holds
	// the unikernel and compile.MirageInfoFile.
	BundleRoot string
	// Args are the app's own boot parameters.
	Args []string
	// Net is the network the boot parameters configure; zero means
	// QEMUUserNet (direct boot is for QEMU).
	Net   Net
	Ports []int
	// MemoryMiB is the guest's memory; 0 means DefaultMemoryMiB.
	MemoryMiB int
}

// Build writes the direct-boot image directory outDir: KernelFile and
// pack.ImageFile (last, so that a directory with an image.json is
// complete). The same Input gives the same bytes and digest.
func Build(ctx context.Context, in Input, outDir string) (*pack.Image, error) {
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("package %s (mirage): %w", in.App, err)
	}
	u, err := compile.ReadMirageUnikernel(in.BundleRoot)
	if err != nil {
		return fail(err)
	}
	if u.Target != Solo5Target {
		return fail(fmt.Errorf("the unikernel was built for Solo5's %q target; this base boots %q unikernels on QEMU", u.Target, Solo5Target))
	}
	if err := checkDevices(u, in.Ports); err != nil {
		return fail(err)
	}
	net := in.Net
	if net == (Net{}) {
		net = QEMUUserNet
	}
	cmdline, err := Cmdline(BootKeys(u, net, in.Args))
	if err != nil {
		return fail(err)
	}
	mem := in.MemoryMiB
	switch {
	case mem == 0:
		mem = DefaultMemoryMiB
	case mem < 0 || mem > maxMemoryMiB:
		return fail(fmt.Errorf("memory %d MiB: a Solo5 virtio unikernel uses from 1 MiB to %d MiB (its page tables map 1 GiB); set memory at most \"1GiB\"", mem, maxMemoryMiB))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	// An older image.json must not vouch for the files being replaced.
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	kernelDigest, err := copyKernel(ctx, filepath.Join(in.BundleRoot, filepath.FromSlash(u.Kernel)), filepath.Join(outDir, KernelFile))
	if err != nil {
		return fail(fmt.Errorf("copy the unikernel: %w", err))
	}
	hw := Hardware()
	img := &pack.Image{
		App:           in.App,
		Base:          Name,
		Format:        pack.FormatKernelInitrd,
		Kernel:        KernelFile,
		Cmdline:       cmdline,
		KernelVersion: kernelVersion(u),
		Digest:        ImageDigest(kernelDigest, cmdline, hw),
		MemoryMiB:     mem,
		Ports:         append([]int(nil), in.Ports...),
		Deterministic: true,
		Console:       Console(),
		Hardware:      hw,
	}
	if err := atomicfile.WriteJSON(filepath.Join(outDir, pack.ImageFile), img, 0o644); err != nil {
		return fail(err)
	}
	return img, nil
}

// checkDevices refuses unikernels that need devices a direct-boot image
// does not give: QEMU attaches one network card, and no disk.
func checkDevices(u *compile.MirageUnikernel, ports []int) error {
	var nets []string
	for _, d := range u.Devices {
		switch d.Type {
		case "NET_BASIC":
			nets = append(nets, d.Name)
		case "BLOCK_BASIC":
			return fmt.Errorf("the unikernel needs a block device (%q in its Solo5 manifest), and the mirage base attaches none yet; use a key-value store built into the unikernel (crunch) instead", d.Name)
		default:
			return fmt.Errorf("the unikernel needs a Solo5 device of type %s (%q), which the mirage base does not know", d.Type, d.Name)
		}
	}
	if len(nets) > 1 {
		return fmt.Errorf("the unikernel needs %d network devices (%v), and Solo5's virtio target attaches one: configure it with one network", len(nets), nets)
	}
	if len(nets) == 0 && len(ports) > 0 {
		return fmt.Errorf("the app declares ports %v, but the unikernel has no network device: its config.ml uses no network (generic_stackv4 default_network, say)", ports)
	}
	return nil
}

// kernelVersion says what built the unikernel, for `unikfile images`.
func kernelVersion(u *compile.MirageUnikernel) string {
	v := "MirageOS"
	if u.Mirage != "" {
		v += " " + u.Mirage
	}
	return v + " unikernel " + u.Name + " (Solo5 " + u.Target + ")"
}

// ImageDigest is a direct-boot image's identity: sha256 over the
// unikernel's digest, the command line and what the guest needs of the
// machine.
func ImageDigest(kernelDigest, cmdline string, hw *pack.Hardware) string {
	h := sha256.New()
	hwJSON, _ := json.Marshal(hw)
	fmt.Fprintf(h, "mirage kernel sha256:%s\ncmdline %s\nhardware %s\n", kernelDigest, cmdline, hwJSON)
	return hex.EncodeToString(h.Sum(nil))
}

// copyKernel copies the unikernel and returns its sha256.
func copyKernel(ctx context.Context, src, dst string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package rump

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
	pack "github.com/unikfile/unikfile/stages/package"
)

// KernelFile is the baked image's name inside an image directory.
const KernelFile = "rumprun.bin"

// Input is what a direct-boot image is made of.
type Input struct {
	App string
	// Program is the compiled app on the host (the bundle's /app/main).
	Program   string
	Toolchain *rumprun.Toolchain
	// Config is the app's configuration (Config.JSON), the kernel's
	// command line.
	Config    string
	Ports     []int
	MemoryMiB int
	// Log receives rumprun-bake's output; nil discards it.
	Log io.Writer
}

// Build bakes in.Program into outDir/KernelFile and writes
// outDir/pack.ImageFile (last: a directory with an image.json is
// complete): a kernel+initrd image with no initrd, booted with -kernel
// and the configuration on -append.
func Build(ctx context.Context, in Input, outDir string) (*pack.Image, error) {
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("bake %s (rump): %w", in.App, err)
	}
	if len(in.Config) > MaxConfig {
		return fail(fmt.Errorf("the configuration is %d bytes; Rumprun takes at most %d", len(in.Config), MaxConfig))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	// An older image.json must not vouch for the file being replaced.
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	kernel := filepath.Join(outDir, KernelFile)
	if err := Bake(ctx, in.Toolchain, in.Program, kernel, in.Log); err != nil {
		return fail(err)
	}
	kernelDigest, size, err := pack.FileDigest(kernel)
	if err != nil {
		return fail(err)
	}
	version := "Rumprun " + BakeConfig
	if v := KernelVersion(kernel); v != "" {
		version += ", " + v
	}
	img := &pack.Image{
		App:           in.App,
		Base:          Name,
		Format:        pack.FormatKernelInitrd,
		Kernel:        KernelFile,
		KernelEntry:   pack.KernelEntryMultiboot,
		Cmdline:       in.Config,
		KernelVersion: version,
		Digest:        ImageDigest(kernelDigest, in.Config),
		MemoryMiB:     in.MemoryMiB,
		Ports:         append([]int(nil), in.Ports...),
		Size:          size,
		Deterministic: true,
		Console:       Console(),
	}
	if err := atomicfile.WriteJSON(filepath.Join(outDir, pack.ImageFile), img, 0o644); err != nil {
		return fail(err)
	}
	return img, nil
}

// ImageDigest is a direct-boot image's digest: the baked kernel and the
// configuration it boots with.
func ImageDigest(kernelDigest, config string) string {
	h := sha256.New()
	fmt.Fprintf(h, "rumprun kernel sha256:%s\nconfig %s\n", kernelDigest, config)
	return hex.EncodeToString(h.Sum(nil))
}

package includeos

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/atomicfile"
	pack "github.com/unikfile/unikfile/stages/package"
)

// KernelFile is the multiboot kernel in an image directory. Loaders give
// its path as the first word of the command line (argv[0]).
const KernelFile = "kernel"

// Memory.
const (
	// DefaultMemoryMiB is an image's memory when the app sets none: the
	// fixture's HTTP service runs in 64 MiB; its heap starts at 16 MiB.
	DefaultMemoryMiB = 128
	// heapStartMiB is where IncludeOS puts its heap (src/platform/x86_pc/os.cpp):
	// the guest needs memory above it.
	heapStartMiB = 16
)

// Input is what an image is made of.
type Input struct {
	App string
	// Service is the service's ELF (the bundle's program).
	Service string
	Args    []string
	Ports   []int
	// MemoryMiB is the guest's memory; 0 means DefaultMemoryMiB.
	MemoryMiB int
}

// Build writes the direct-boot image directory outDir: KernelFile, made
// from the service's ELF by MakeKernel, and pack.ImageFile, last (a
// directory with an image.json is complete). The same input gives the
// same bytes and digest.
func Build(in Input, outDir string) (*pack.Image, error) {
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("package %s (includeos): %w", in.App, err)
	}
	cmdline, err := Cmdline(in.Args)
	if err != nil {
		return fail(err)
	}
	k, err := MakeKernel(in.Service)
	if err != nil {
		return fail(err)
	}
	mem := in.MemoryMiB
	if mem == 0 {
		mem = DefaultMemoryMiB
	}
	need := max(heapStartMiB, int((k.BSSEndAddr+(1<<20)-1)>>20)) + 16
	if mem < need {
		return fail(fmt.Errorf("memory %d MiB is too small: IncludeOS's heap starts at %d MiB, above the service's %d MiB; give the app at least %d MiB (memory = \"%dMiB\")",
			mem, heapStartMiB, (k.BSSEndAddr+(1<<20)-1)>>20, need, need))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	// An older image.json must not vouch for the file being replaced.
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if err := atomicfile.WriteFile(filepath.Join(outDir, KernelFile), k.Image, 0o644); err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(k.Image)
	img := &pack.Image{
		App:           in.App,
		Base:          Name,
		Format:        pack.FormatKernelInitrd,
		Kernel:        KernelFile,
		Cmdline:       cmdline,
		KernelVersion: "IncludeOS",
		Digest:        ImageDigest(hex.EncodeToString(sum[:]), cmdline),
		MemoryMiB:     mem,
		Ports:         append([]int(nil), in.Ports...),
		Size:          int64(len(k.Image)),
		Deterministic: true,
		Console:       Console(),
	}
	if err := atomicfile.WriteJSON(filepath.Join(outDir, pack.ImageFile), img, 0o644); err != nil {
		return fail(err)
	}
	return img, nil
}

// ImageDigest is a direct-boot image's identity: sha256 over the kernel's
// digest and the command line.
func ImageDigest(kernelDigest, cmdline string) string {
	h := sha256.New()
	fmt.Fprintf(h, "includeos kernel sha256:%s\ncmdline %s\n", kernelDigest, cmdline)
	return hex.EncodeToString(h.Sum(nil))
}

package linux

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

// KernelMinimal is the linux { kernel } value (and UNIKFILE_KERNEL value)
// that asks for a kernel built for the app's language and its image's
// platform (package kbuild). A file called "minimal" is written
// "./minimal".
const KernelMinimal = "minimal"

// KernelIDPrefix starts the ID of every node that builds a minimal kernel.
const KernelIDPrefix = "build kernel "

var _ pack.Preparer = Base{}

// minimalKernel says whether app a boots a kernel built for it: its
// linux block says "minimal", or it names no kernel and UNIKFILE_KERNEL
// does.
func minimalKernel(s Settings, environ []string) bool {
	if s.Kernel != "" {
		return s.Kernel == KernelMinimal
	}
	if environ == nil {
		environ = os.Environ()
	}
	return run.Getenv(environ, KernelEnv) == KernelMinimal
}

// Prepare is the node that builds app a's minimal kernel for platform p,
// nil when a boots a kernel file. Its ID names the kernel's needs beyond
// those of every kernel ("build kernel (pvh root-disk virtio-mmio)"), so every app
// with the same needs shares it.
func (Base) Prepare(a *lang.App, p pack.Platform, env *pack.Env) (*pack.Shared, string) {
	if !minimalKernel(SettingsOf(a), env.Environ) {
		return nil, ""
	}
	n, err := kbuild.NeedsFor(a.Language, p)
	if err != nil {
		return &pack.Shared{ID: KernelIDPrefix + "for " + a.Name, Run: func(context.Context, *pack.Env) (any, bool, error) {
			return nil, false, fmt.Errorf("app %s: %w", a.Name, err)
		}}, "kernel for " + a.Name
	}
	label := strings.Join(kbuild.Distinctive(n), " ")
	return &pack.Shared{ID: KernelIDPrefix + "(" + label + ")", Run: func(ctx context.Context, env *pack.Env) (any, bool, error) {
		return buildKernel(ctx, n, env)
	}}, "kernel " + label
}

// buildKernel builds (or finds) the kernel for n. With a lookup-only
// cache (unikfile graph) it only looks.
func buildKernel(ctx context.Context, n kbuild.Needs, env *pack.Env) (*kbuild.Kernel, bool, error) {
	environ := env.Environ
	if environ == nil {
		environ = os.Environ()
	}
	b := &kbuild.Builder{Root: kbuild.Dir(env.Cache.Dir(), environ), Say: env.Say, Environ: environ}
	// What the kernel's key depends on, for build stamps: the unpacked
	// sources (a new version), the compiler and the linker.
	env.Digests.Saw(filepath.Join(b.Root, "src"))
	for _, tool := range []string{"gcc", "ld"} {
		if p, err := exec.LookPath(tool); err == nil {
			env.Digests.Saw(p)
			if real, err := filepath.EvalSymlinks(p); err == nil {
				env.Digests.Saw(real)
			}
		}
	}
	if env.Cache.IsLookupOnly() {
		k, err := b.Lookup(ctx, n)
		if err != nil {
			return nil, false, err
		}
		if k == nil {
			return nil, false, cache.ErrNotCached
		}
		return k, true, nil
	}
	k, hit, err := b.Build(ctx, n)
	if err != nil {
		return nil, false, err
	}
	env.Digests.Saw(k.Dir)
	return k, hit, nil
}

// BuiltKernel is a kernel kbuild built, as images take it: every driver
// built in (no modules), its entry point and bus, and whether it mounts
// root disks.
func BuiltKernel(k *kbuild.Kernel) *Kernel {
	lk := &Kernel{Path: k.Path(), Version: k.Release, Digest: k.Digest, Entry: k.Entry, Bus: k.Bus,
		HZ: ConfigHZ(filepath.Join(k.Dir, kbuild.FileConfig))}
	if (kbuild.Needs{Features: k.Features}).Has("root-disk") {
		lk.RootFS = RootFSEROFS
	}
	return lk
}

package linux

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/internal/stamp"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

// Name is the base's name in an app's `base` attribute.
const Name = "linux"

// Settings are an app's `linux { ... }` block.
type Settings struct {
	// Kernel is a path to a vmlinuz, made absolute against the Unikfile's
	// directory; it may lie outside the project. "" means: UNIKFILE_KERNEL,
	// then the kernel cache. KernelMinimal is a kernel built for the app
	// and its image's platform (minimal.go).
	Kernel string `json:"kernel,omitempty"`
	// Cmdline is appended to the kernel command line unikfile builds.
	Cmdline string `json:"cmdline,omitempty"`
}

// SettingsOf returns the app's linux settings (zero for an app decoded
// elsewhere).
func SettingsOf(a *lang.App) Settings {
	if s, ok := a.BaseSettings.(*Settings); ok && s != nil {
		return *s
	}
	return Settings{}
}

// Base is the linux base: a Linux kernel plus an initramfs holding the app,
// what it needs, and the guest init as PID 1.
type Base struct{}

var _ pack.Base = Base{}

// Languages: the linux base runs every language that builds a Linux
// program (OCaml apps are MirageOS unikernels, see compile.TargetFor).
func (Base) Languages() []string { return compile.LanguagesFor(Name) }

// Schema is the linux block's body.
func (Base) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "kernel"}, {Name: "cmdline"}}}
}

// Decode reads the linux block: a kernel that exists (it may lie outside
// the project), and a command line the kernel can take.
func (Base) Decode(b *lang.Block, _ *lang.App) any {
	s := &Settings{}
	var attr *hcl.Attribute
	if k, _ := b.String("kernel", ""); k == KernelMinimal {
		s.Kernel = KernelMinimal // built for the app: see minimal.go
	} else if s.Kernel, attr = b.Path("kernel"); s.Kernel != "" {
		if fi, err := os.Stat(s.Kernel); err != nil || !fi.Mode().IsRegular() {
			why := "it is not a file"
			if err != nil {
				why = err.Error()
			}
			b.Errorf(attr.Expr.Range(), "Kernel not found", "kernel = %q: %s. Point it at a vmlinuz (relative to the Unikfile's directory, or absolute), or remove it to use UNIKFILE_KERNEL or the kernel cache (unikfile kernel fetch).", s.Kernel, why)
		}
	}
	if s.Cmdline, attr = b.String("cmdline", ""); strings.ContainsAny(s.Cmdline, "\n\r\x00") {
		b.Errorf(attr.Expr.Range(), "Invalid kernel command line", "cmdline holds a line break or a NUL character; the kernel command line is one line of words.")
	}
	return s
}

// initID names the node that builds the guest init.
const initID = "build guest init"

// Shared builds the guest init, once per init source and Go toolchain, for
// every app.
func (Base) Shared() *pack.Shared {
	return &pack.Shared{ID: initID, Run: buildInit}
}

func buildInit(ctx context.Context, env *pack.Env) (any, bool, error) {
	// guest.Build pins GOOS, GOARCH, GOAMD64, GOFLAGS and CGO; what it
	// inherits from this environment is below.
	// What go says is kept across runs while the go binary, its settings
	// file and the environment stay the same (cache.Facts).
	args := []string{"env", "-json", "GOVERSION", "GOROOT", "GOEXPERIMENT", "GODEBUG"}
	environ := os.Environ() // what the go command runs with
	q := "guest init: go " + strings.Join(args, " ") + "\n" + strings.Join(stamp.Environ(environ), "\n")
	gover, err := env.Cache.Facts().Get(q, compile.GoToolchainFiles(environ), func() (string, error) {
		res, err := run.Run(ctx, run.Cmd{Path: "go", Args: args,
			Hint: "the guest init is built with Go: install Go (https://go.dev/doc/install) and put it in PATH"})
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(res.Stdout)), nil
	})
	if err != nil {
		return "", false, err
	}
	key := (&cache.Key{}).Add("stage", "init").Add("source", guest.SourceDigest()).Add("go", gover).Sum()
	dir, hit, err := env.Cache.Fill(ctx, "init", key, func(ctx context.Context, dir string) error {
		return guest.Build(ctx, "go", filepath.Join(dir, "init"))
	})
	if err != nil {
		return "", false, fmt.Errorf("build guest init: %w", err)
	}
	return filepath.Join(dir, "init"), hit, nil
}

// resolvedKernel is a kernel and the digest of its module closure.
type resolvedKernel struct {
	k       *Kernel
	modules string
}

// kernel resolves the kernel for setting (an app's linux.kernel, "" for
// the default) and digests its modules, once per run.
func kernel(env *pack.Env, setting string) (*Kernel, string, error) {
	v, err := env.Memo.Do("linux kernel "+setting, func() (any, error) {
		environ := env.Environ
		if environ == nil {
			environ = os.Environ()
		}
		k, err := ResolveKernelWith(setting, env.Cache.Dir(), environ, env.Digests.FileDigest)
		var r resolvedKernel
		if err == nil {
			r.k = k
			r.modules, err = ModulesDigestWith(k, env.Digests.FileDigest)
		}
		// What a later run's kernel choice and module closure depend on.
		env.Digests.Saw(filepath.Join(env.Cache.Dir(), "kernels"))
		if err == nil && k.ModulesDir != "" {
			env.Digests.SawTree(k.ModulesDir)
		}
		return r, err
	})
	if err != nil {
		return nil, "", err
	}
	r := v.(resolvedKernel)
	return r.k, r.modules, nil
}

// storedKernel returns k as the cache holds it: one copy of each kernel
// image (by its digest, entry kind kernelKind), which nothing
// rewrites, so that every image of that kernel hard-links it
// (Kernel.Immutable) instead of holding a copy of its own (14 MiB for
// Debian's kernel: a tree of 100 apps kept 1.4 GiB of identical
// kernels, and writing them was most of a package stage's time). The
// copy is made from k.Path once per cache and checked against k.Digest.
func storedKernel(ctx context.Context, store *cache.Store, k *Kernel) (*Kernel, error) {
	if k.Digest == "" {
		return k, nil
	}
	entry, _, err := store.Fill(ctx, kernelKind, k.Digest, func(ctx context.Context, dir string) error {
		d, err := copyFile(ctx, k.Path, filepath.Join(dir, KernelFile))
		if err == nil && d != k.Digest {
			err = fmt.Errorf("kernel %s changed since it was resolved (sha256 %s, was %s)", k.Path, d, k.Digest)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store kernel %s: %w", k.Path, err)
	}
	sk := *k
	sk.Path, sk.Immutable = filepath.Join(entry, KernelFile), true
	return &sk, nil
}

// kernelKind is the cache's entry kind of kernel images (storedKernel).
const kernelKind = "kernel-images"

// Package makes the kernel+initrd image of one app: the kernel, and an
// initramfs of the bundle, the kernel's modules and the guest init, cached
// under a key of all of them.
func (Base) Package(ctx context.Context, env *pack.Env, in pack.Input) (*pack.Built, error) {
	a := in.App
	settings := SettingsOf(a)
	initBin, _ := in.Shared.(string)
	var k *Kernel
	var modDigest string
	if built, ok := in.Prepared.(*kbuild.Kernel); ok && built != nil {
		k = BuiltKernel(built) // every driver built in: no modules
	} else if minimalKernel(settings, env.Environ) {
		return nil, fmt.Errorf("package %s: the minimal kernel is built by the kernel node the pipeline adds for Base.Prepare, and none ran", a.Name)
	} else {
		var err error
		if k, modDigest, err = kernel(env, settings.Kernel); err != nil {
			return nil, fmt.Errorf("package %s: %w", a.Name, err)
		}
	}
	initDigest, err := env.Digests.FileDigest(initBin)
	if err != nil {
		return nil, err
	}
	// The host's CA bundle goes into the image, so it is an input.
	caDigest, _ := env.Digests.FileDigest(HostCACerts)
	cfg := guest.Config{
		App:   a.Name,
		Argv:  pack.Argv(in),
		Env:   pack.Environment(in),
		Dir:   in.Bundle.Manifest.Dir,
		Ports: append([]int(nil), a.Ports...),
		// Not when the app's env says, as for its other variables.
		EmulatedEnv: in.Bundle.Manifest.EmulatedEnv,
	}
	memory := pack.MemoryMiB(in)
	cfgJSON, _ := json.Marshal(cfg)
	key := (&cache.Key{}).
		Add("stage", "package").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("format", pack.FormatKernelInitrd).
		Add("bundle", in.Bundle.Manifest.Key).
		Add("kernel", k.Digest).
		Add("modules", modDigest).
		Add("init", initDigest).
		Add("ca-certificates", caDigest).
		Add("config", string(cfgJSON)).
		Add("cmdline", settings.Cmdline).
		Add("memory", strconv.Itoa(memory)).
		Sum()
	from := []string{in.Bundle.Dir, initBin} // what a prune keeps with the image
	if k.Digest != "" {
		from = append(from, env.Cache.Path(kernelKind, k.Digest))
	}
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		sk, err := storedKernel(ctx, env.Cache, k)
		if err != nil {
			return err
		}
		_, err = Build(ctx, Input{
			BundleRoot:   filepath.Join(in.Bundle.Dir, compile.RootfsDir),
			Config:       cfg,
			Kernel:       sk,
			InitBinary:   initBin,
			ExtraCmdline: settings.Cmdline,
			MemoryMiB:    memory,
		}, dir)
		return err
	}, from...)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", a.Name, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, err
	}
	return &pack.Built{Image: img, Dir: dir, Cached: hit}, nil
}

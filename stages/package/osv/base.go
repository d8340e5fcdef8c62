package osv

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
	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Name is the base's name in an app's `base` attribute.
const Name = "osv"

// Settings are an app's `osv { ... }` block.
type Settings struct {
	// Kernel is an OSv kernel folder (or its loader-stripped.elf), made
	// absolute against the Unikfile's directory. "" means:
	// UNIKFILE_OSV_KERNEL, then the kernel cache.
	Kernel string `json:"kernel,omitempty"`
	// Options are more OSv kernel options, placed before the app
	// (--disable_rofs_cache, --maxnic=1, ...).
	Options []string `json:"options,omitempty"`
}

// SettingsOf returns the app's osv settings (zero for an app decoded
// elsewhere).
func SettingsOf(a *lang.App) Settings {
	if s, ok := a.BaseSettings.(*Settings); ok && s != nil {
		return *s
	}
	return Settings{}
}

// Base is the osv base: OSv's kernel and a ROFS root file system holding
// the app.
type Base struct{}

var (
	_ pack.Base          = Base{}
	_ pack.DiskMaker     = Base{}
	_ pack.KernelFetcher = Base{}
)

// Languages are those the compile stage builds for OSv (node and java do
// not run on it).
func (Base) Languages() []string { return compile.LanguagesFor(Name) }

// Schema is the osv block's body.
func (Base) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "kernel"}, {Name: "options"}}}
}

// Decode reads the osv block: a kernel that exists (a folder, or the
// loader-stripped.elf in one; it may lie outside the project), and
// options that are OSv kernel options.
func (Base) Decode(b *lang.Block, _ *lang.App) any {
	s := &Settings{}
	var attr *hcl.Attribute
	if s.Kernel, attr = b.Path("kernel"); s.Kernel != "" {
		if _, err := os.Stat(s.Kernel); err != nil {
			b.Errorf(attr.Expr.Range(), "OSv kernel not found", "kernel = %q: %s. Point it at a folder holding %s, %s and %s (relative to the Unikfile's directory, or absolute), or remove it to use %s or the kernel cache.", s.Kernel, err, LoaderFile, EnvironFile, BootFile, KernelEnv)
		}
	}
	s.Options = b.Strings("options")
	if attr := b.Attr("options"); attr != nil {
		for _, o := range s.Options {
			if !strings.HasPrefix(o, "--") || strings.ContainsAny(o, " \t\n") {
				b.Errorf(attr.Expr.Range(), "Invalid OSv option", "%q is not an OSv kernel option: options are single words starting with -- (e.g. \"--disable_rofs_cache\"); the app's own arguments go in args.", o)
			}
		}
	}
	return s
}

// Shared builds the readiness helper, once per source and C compiler, for
// every app.
func (Base) Shared() *pack.Shared {
	return &pack.Shared{ID: readyID, Run: buildReadyShared}
}

// kernel resolves the kernel for setting once per run.
func kernel(env *pack.Env, setting string) (*Kernel, error) {
	v, err := env.Memo.Do("osv kernel "+setting, func() (any, error) {
		environ := env.Environ
		if environ == nil {
			environ = os.Environ()
		}
		k, err := ResolveKernel(setting, env.Cache.Dir(), environ, env.Digests.FileDigest)
		// What a later run's kernel choice depends on.
		env.Digests.Saw(filepath.Join(env.Cache.Dir(), "kernels", "osv"))
		return k, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*Kernel), nil
}

// Package makes the direct-boot image of one app: the kernel and the root
// disk, cached under a key of the bundle, the kernel, the CA bundle, the
// command line's inputs and the memory.
func (Base) Package(ctx context.Context, env *pack.Env, in pack.Input) (*pack.Built, error) {
	a := in.App
	settings := SettingsOf(a)
	k, err := kernel(env, settings.Kernel)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", a.Name, err)
	}
	caDigest, _ := env.Digests.FileDigest(HostCACerts)
	ready, _ := in.Shared.(string)
	readyDigest, err := env.Digests.FileDigest(ready)
	if err != nil {
		return nil, fmt.Errorf("package %s: the readiness helper: %w", a.Name, err)
	}
	cmd := Command{
		Argv:    pack.Argv(in),
		Env:     pack.Environment(in),
		Dir:     in.Bundle.Manifest.Dir,
		Options: settings.Options,
	}
	memory := 0 // what the image needs
	if a.MemorySet {
		memory = a.MemoryMiB
	}
	cmdJSON, _ := json.Marshal(cmd)
	key := (&cache.Key{}).
		Add("stage", "package").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("format", FormatDirect).
		Add("bundle", in.Bundle.Manifest.Key).
		Add("kernel", k.Digest).
		Add("ca-certificates", caDigest).
		Add("ready", readyDigest).
		Add("command", string(cmdJSON)).
		Add("ports", fmt.Sprint(a.Ports)).
		Add("memory", strconv.Itoa(memory)).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := Build(ctx, Input{
			App:         a.Name,
			BundleRoot:  filepath.Join(in.Bundle.Dir, compile.RootfsDir),
			Command:     cmd,
			Kernel:      k,
			Ports:       append([]int(nil), a.Ports...),
			MemoryMiB:   memory,
			ReadyHelper: ready,
		}, dir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", a.Name, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, err
	}
	return &pack.Built{Image: img, Dir: dir, Cached: hit}, nil
}

// Disk makes the BIOS disk of a direct-boot image, with the kernel the
// image was made with (KernelRefFile), cached under a key of the image,
// the boot mode and loader.img.
func (Base) Disk(ctx context.Context, env *pack.Env, src *pack.Built, boot string) (*pack.Built, error) {
	app := src.Image.App
	k, err := readKernelRef(src.Dir, env.Digests.FileDigest)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", app, err)
	}
	key := (&cache.Key{}).
		Add("stage", "disk").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("source", src.Image.Digest).
		Add("boot", boot).
		Add("loader.img", k.BootDigest).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := BuildDisk(ctx, DiskInput{ImageDir: src.Dir, Image: src.Image, Kernel: k, Boot: boot}, dir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", app, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, err
	}
	return &pack.Built{Image: img, Dir: dir, Cached: hit}, nil
}

// FetchKernel fills the kernel cache with the newest pinned OSv release
// (`unikfile kernel fetch --base osv`) and returns its folder.
func (Base) FetchKernel(ctx context.Context, cacheDir string, say func(string)) (string, error) {
	rel, err := DefaultRelease()
	if err != nil {
		return "", err
	}
	k, err := FetchKernel(ctx, cacheDir, rel, nil, say)
	if err != nil {
		return "", err
	}
	return filepath.Dir(k.Loader), nil
}

// KernelRefFile, in a direct-boot image directory, names the kernel the
// image was made with, so that its BIOS disk is made with the same
// loader.img.
const KernelRefFile = "osv-kernel.json"

func writeKernelRef(dir string, k *Kernel) error {
	return atomicfile.WriteJSON(filepath.Join(dir, KernelRefFile), k, 0o644)
}

// readKernelRef reads the image's kernel and checks that its loader.img is
// still the one it was.
func readKernelRef(dir string, digest Digester) (*Kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, KernelRefFile))
	if err != nil {
		return nil, fmt.Errorf("the image in %s does not name its OSv kernel (%w); rebuild it", dir, err)
	}
	var k Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, KernelRefFile), err)
	}
	if k.Boot == "" {
		return &k, nil // BuildDisk says what is missing
	}
	d, err := digest(k.Boot)
	if err != nil {
		return nil, fmt.Errorf("the OSv kernel's %s: %w", BootFile, err)
	}
	if d != k.BootDigest {
		return nil, fmt.Errorf("%s changed since the image was made (sha256 %s, was %s): build the image again", k.Boot, d, k.BootDigest)
	}
	return &k, nil
}

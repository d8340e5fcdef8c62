package mirage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Name is the base's name in an app's `base` attribute.
const Name = "mirage"

// Solo5Target is the Solo5 target this base's unikernels are built for
// (the compile stage's table says the same): virtio, which QEMU boots
// with -kernel.
const Solo5Target = "virtio"

// Settings are an app's `mirage { ... }` block.
type Settings struct {
	// Toolchain is a MirageOS toolchain: an opam switch's prefix (opam var
	// prefix), or a folder with one prefix per Solo5 target (virtio/,
	// spt/), made absolute against the Unikfile's directory. "" means:
	// $UNIKFILE_MIRAGE_TOOLCHAIN, then the mirage in PATH.
	Toolchain string `json:"toolchain,omitempty"`
}

// MirageToolchain is the toolchain setting, for the compile stage.
func (s *Settings) MirageToolchain() string { return s.Toolchain }

// SettingsOf returns the app's mirage settings (zero for an app decoded
// elsewhere).
func SettingsOf(a *lang.App) Settings {
	if s, ok := a.BaseSettings.(*Settings); ok && s != nil {
		return *s
	}
	return Settings{}
}

// Base is the mirage base: an OCaml app built by MirageOS into a Solo5
// unikernel (by the compile stage's ocaml language), booted directly.
type Base struct{}

var (
	_ pack.Base      = Base{}
	_ pack.DiskMaker = Base{}
)

// Languages: MirageOS unikernels are OCaml programs.
func (Base) Languages() []string { return compile.LanguagesFor(Name) }

// Schema is the mirage block's body.
func (Base) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "toolchain"}}}
}

// Decode reads the mirage block (a toolchain that exists; it may lie
// outside the project) and checks what of the app a unikernel can take:
// no environment (boot parameters go in args), args that MirageOS's
// command line carries.
func (Base) Decode(b *lang.Block, app *lang.App) any {
	s := &Settings{}
	var attr *hcl.Attribute
	if s.Toolchain, attr = b.Path("toolchain"); s.Toolchain != "" {
		if _, err := os.Stat(s.Toolchain); err != nil {
			b.Errorf(attr.Expr.Range(), "MirageOS toolchain not found", "toolchain = %q: %s. Point it at an opam switch's prefix (opam var prefix) or a folder with one prefix per Solo5 target (virtio/, spt/), relative to the Unikfile's directory or absolute; or remove it to use %s or the mirage in PATH.", s.Toolchain, err, compile.MirageToolchainEnv)
		}
	}
	if app == nil {
		return s
	}
	if len(app.Env) > 0 {
		names := make([]string, 0, len(app.Env))
		for k := range app.Env {
			names = append(names, k)
		}
		sort.Strings(names)
		b.Errorf(app.Range, "Environment on a MirageOS unikernel", "App %q sets env (%s), but a MirageOS unikernel has no environment: pass settings as its boot parameters in args (e.g. args = [\"--http-port=8080\"]; its config.ml declares them as keys).", app.Name, strings.Join(names, ", "))
	}
	for _, a := range app.Args {
		if err := CheckArg(a); err != nil {
			b.Errorf(app.Range, "Invalid boot parameter", "App %q: %s.", app.Name, err)
		}
	}
	return s
}

// Shared: MirageOS images need no work shared between apps.
func (Base) Shared() *pack.Shared { return nil }

// Package makes the direct-boot image of one app: the unikernel and its
// boot parameters, cached under a key of the bundle, the boot parameters'
// inputs, the ports and the memory.
func (Base) Package(ctx context.Context, env *pack.Env, in pack.Input) (*pack.Built, error) {
	a := in.App
	memory := 0 // DefaultMemoryMiB
	if a.MemorySet {
		memory = a.MemoryMiB
	}
	key := (&cache.Key{}).
		Add("stage", "package").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("format", pack.FormatKernelInitrd).
		Add("bundle", in.Bundle.Manifest.Key).
		Add("args", strconv.Quote(strings.Join(a.Args, "\x00"))).
		Add("ports", fmt.Sprint(a.Ports)).
		Add("memory", strconv.Itoa(memory)).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := Build(ctx, Input{
			App:        a.Name,
			BundleRoot: filepath.Join(in.Bundle.Dir, compile.RootfsDir),
			Args:       append([]string(nil), a.Args...),
			Ports:      append([]int(nil), a.Ports...),
			MemoryMiB:  memory,
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

// Disk refuses: a Solo5 virtio unikernel boots directly (QEMU's -kernel);
// a bootable disk would need a multiboot loader (SYSLINUX's mboot.c32, as
// Solo5's solo5-virtio-mkimage lays it out), which this base does not
// make yet.
func (Base) Disk(_ context.Context, _ *pack.Env, src *pack.Built, boot string) (*pack.Built, error) {
	return nil, fmt.Errorf("package %s: the mirage base makes direct-boot images only (format = %q, QEMU's -kernel), not %s disks: a bootable disk of a Solo5 unikernel needs a multiboot loader, which unikfile does not build yet; remove format from the target (or set format = %q)",
		src.Image.App, pack.FormatKernelInitrd, boot, pack.FormatKernelInitrd)
}

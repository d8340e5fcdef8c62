package includeos

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	sdk "github.com/unikfile/unikfile/stages/compile/includeos"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Name is the base's name in an app's `base` attribute.
const Name = "includeos"

// Base is the includeos base: a C or C++ service linked with IncludeOS by
// the compile stage, booted as a multiboot kernel.
type Base struct{}

var (
	_ pack.Base      = Base{}
	_ pack.DiskMaker = Base{}
)

// Languages are c and cpp (the compile stage's table says which).
func (Base) Languages() []string { return compile.LanguagesFor(Name) }

// Schema is the includeos block's body.
func (Base) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "sdk"}}}
}

// Decode reads the includeos block (an SDK folder, which may lie outside
// the project, and must be one) and checks what of the app IncludeOS
// cannot take: an environment (it has none) and arguments its command
// line cannot carry.
func (Base) Decode(b *lang.Block, app *lang.App) any {
	s := &sdk.Settings{}
	var attr *hcl.Attribute
	if s.SDK, attr = b.Path("sdk"); s.SDK != "" {
		if _, err := sdk.Open(s.SDK); err != nil {
			b.Errorf(attr.Expr.Range(), "Not an IncludeOS SDK", "sdk = %q: %s", s.SDK, err)
		}
	}
	if len(app.Env) > 0 {
		names := make([]string, 0, len(app.Env))
		for k := range app.Env {
			names = append(names, k)
		}
		sort.Strings(names)
		b.Errorf(app.Range, "IncludeOS services have no environment",
			"App %s sets env (%s), but IncludeOS passes a service nothing but its command line: pass the values as args, or choose another base.", app.Name, strings.Join(names, ", "))
	}
	if _, err := Cmdline(app.Args); err != nil {
		b.Errorf(app.Range, "Arguments IncludeOS cannot take", "App %s: %s.", app.Name, err)
	}
	return s
}

// Shared: IncludeOS images need no work shared between apps.
func (Base) Shared() *pack.Shared { return nil }

// Package makes the direct-boot image of one app, cached under a key of
// the bundle (which covers the SDK), the command line, the ports and the
// memory.
func (Base) Package(ctx context.Context, env *pack.Env, in pack.Input) (*pack.Built, error) {
	a := in.App
	memory := 0
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
		_, err := Build(Input{
			App:       a.Name,
			Service:   filepath.Join(in.Bundle.Dir, compile.RootfsDir, filepath.FromSlash(in.Bundle.Manifest.Program)),
			Args:      a.Args,
			Ports:     append([]int(nil), a.Ports...),
			MemoryMiB: memory,
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

// Disk makes the BIOS disk of a direct-boot image (BuildDisk), cached
// under a key of the image, the boot mode and GRUB's and xorriso's files.
func (Base) Disk(ctx context.Context, env *pack.Env, src *pack.Built, boot string) (*pack.Built, error) {
	app := src.Image.App
	grub := GRUB{}
	tools, err := grub.Digest()
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", app, err)
	}
	key := (&cache.Key{}).
		Add("stage", "disk").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("source", src.Image.Digest).
		Add("memory", strconv.Itoa(src.Image.MemoryMiB)).
		Add("ports", fmt.Sprint(src.Image.Ports)).
		Add("boot", boot).
		Add("grub", tools).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := BuildDisk(ctx, DiskInput{ImageDir: src.Dir, Image: src.Image, Boot: boot, GRUB: grub}, dir)
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

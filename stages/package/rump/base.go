package rump

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
	"github.com/unikfile/unikfile/stages/compile/rumprun"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
)

// Name is the base's name in an app's `base` attribute.
const Name = "rump"

// Settings are an app's `rump { ... }` block.
type Settings struct {
	// Toolchain is a Rumprun toolchain folder, made absolute against the
	// Unikfile's directory; "" means UNIKFILE_RUMPRUN_TOOLCHAIN, then
	// PATH (see rumprun.Resolve).
	Toolchain string `json:"toolchain,omitempty"`
}

// RumpToolchain is the toolchain setting, for the compile stage.
func (s *Settings) RumpToolchain() string {
	if s == nil {
		return ""
	}
	return s.Toolchain
}

// SettingsOf returns the app's rump settings (zero for an app decoded
// elsewhere).
func SettingsOf(a *lang.App) Settings {
	if s, ok := a.BaseSettings.(*Settings); ok && s != nil {
		return *s
	}
	return Settings{}
}

// Base is the rump base: apps baked with Rumprun's rump kernels.
type Base struct{}

var (
	_ pack.Base      = Base{}
	_ pack.DiskMaker = Base{}
)

// Languages are those the compile stage builds for Rumprun: C and C++.
func (Base) Languages() []string { return compile.LanguagesFor(Name) }

// Schema is the rump block's body.
func (Base) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "toolchain"}}}
}

// Decode reads the rump block: a toolchain, if named, must be one. It
// also checks that Rumprun's configuration can carry the app's args and
// env, so that validate says so before anything builds.
func (Base) Decode(b *lang.Block, app *lang.App) any {
	s := &Settings{}
	var attr *hcl.Attribute
	if s.Toolchain, attr = b.Path("toolchain"); s.Toolchain != "" {
		if _, err := rumprun.Resolve(s.Toolchain, nil); err != nil {
			b.Errorf(attr.Expr.Range(), "Rumprun toolchain not usable", "toolchain = %q: %s.", s.Toolchain, err)
		}
	}
	if app == nil {
		return s
	}
	for i, a := range app.Args {
		if err := CheckArg(a); err != nil {
			b.Errorf(app.Range, "Argument Rumprun cannot pass", "args[%d] = %q of app %q: %s. Pass the value another way (a file in the source, a default in the program).", i, a, app.Name, err)
		}
	}
	keys := make([]string, 0, len(app.Env))
	for k := range app.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := CheckEnv(k, app.Env[k]); err != nil {
			b.Errorf(app.Range, "Environment Rumprun cannot pass", "app %q: %s.", app.Name, err)
		}
	}
	return s
}

// Shared: rump images need no work shared between apps.
func (Base) Shared() *pack.Shared { return nil }

// toolchain resolves the app's toolchain and its identity once per run.
func toolchain(ctx context.Context, env *pack.Env, setting string) (*rumprun.Toolchain, string, error) {
	tc, err := rumprun.Resolve(setting, env.Environ)
	if err != nil {
		return nil, "", err
	}
	v, err := env.Memo.Do("rumprun toolchain "+tc.Dir, func() (any, error) { return tc.Identity(ctx) })
	if err != nil {
		return nil, "", err
	}
	return tc, v.(string), nil
}

// Package bakes the direct-boot image of one app, cached under a key of
// the bundle, the toolchain, the bake configuration, Rumprun's
// configuration (argv, env, the network) and the memory.
func (Base) Package(ctx context.Context, env *pack.Env, in pack.Input) (*pack.Built, error) {
	a := in.App
	tc, tcID, err := toolchain(ctx, env, SettingsOf(a).Toolchain)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", a.Name, err)
	}
	argv := pack.Argv(in)
	argv[0] = a.Name // Rumprun's argv[0] names the program; there is no file system path to it
	cfg, err := Config{Argv: argv, Env: pack.Environment(in), Net: QEMUUserNet}.JSON()
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", a.Name, err)
	}
	mem := pack.MemoryMiB(in)
	key := (&cache.Key{}).
		Add("stage", "package").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("format", pack.FormatKernelInitrd).
		Add("bundle", in.Bundle.Manifest.Key).
		Add("toolchain", tcID).
		Add("bake", BakeConfig).
		Add("config", cfg).
		Add("ports", fmt.Sprint(a.Ports)).
		Add("memory", strconv.Itoa(mem)).
		Sum()
	program := filepath.Join(in.Bundle.Dir, compile.RootfsDir, filepath.FromSlash(strings.TrimPrefix(in.Bundle.Manifest.Program, "/")))
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := Build(ctx, Input{App: a.Name, Program: program, Toolchain: tc, Config: cfg, Ports: a.Ports, MemoryMiB: mem}, dir)
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

// Disk makes the BIOS disk of a direct-boot image with the disk stage
// (SYSLINUX and its mboot.c32 on a FAT partition), the configuration's
// network switched to DHCP: a disk may boot on any virtio hypervisor.
func (Base) Disk(ctx context.Context, env *pack.Env, src *pack.Built, boot string) (*pack.Built, error) {
	app := src.Image.App
	if boot != pack.BootBIOS {
		return nil, fmt.Errorf("package %s: boot mode %q: Rumprun's images are multiboot kernels, which boot by BIOS (SYSLINUX's mboot.c32); there is no UEFI loader for them: use boot = \"bios\"", app, boot)
	}
	cfg, err := WithNet(src.Image.Cmdline, DHCP)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", app, err)
	}
	tools := disk.Tools{}
	toolsDigest, err := tools.MultibootDigest(boot)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", app, err)
	}
	key := (&cache.Key{}).
		Add("stage", "disk").
		Add("tool", env.ToolVersion).
		Add("base", Name).
		Add("source", src.Image.Digest).
		Add("config", cfg).
		Add("boot", boot).
		Add("tools", toolsDigest).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		img := *src.Image
		img.Cmdline = cfg
		_, err := disk.Build(ctx, disk.Input{ImageDir: src.Dir, Image: &img, Boot: boot, Tools: tools}, dir)
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

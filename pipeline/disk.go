package pipeline

import (
	"context"
	"fmt"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
	"github.com/unikfile/unikfile/stages/package/format"
	"github.com/unikfile/unikfile/stages/registry"
)

// BuildFormatGraph returns the graph that builds apps into images of one
// format (pack.FormatKernelInitrd or a disk format of
// stages/package/format) and boot mode ("" means bios; ignored for
// kernel+initrd).
func BuildFormatGraph(p *lang.Project, apps []*lang.App, env *Env, fmtName, boot string) *graph.Graph {
	g := graph.New()
	r := newPlanner(env)
	for _, a := range apps {
		r.addImage(g, p, a, fmtName, boot)
	}
	return g
}

// CheckFormat says whether fmtName and boot name an image this version
// can build, with an error that lists the choices.
func CheckFormat(fmtName, boot string) error {
	if fmtName != pack.FormatKernelInitrd {
		if _, ok := format.Lookup(fmtName); !ok {
			return format.UnknownError(fmtName)
		}
	}
	switch boot {
	case "", pack.BootBIOS, pack.BootUEFI:
		return nil
	}
	return fmt.Errorf("boot mode %q is not known; boot modes: %s, %s", boot, pack.BootBIOS, pack.BootUEFI)
}

// addImage adds the nodes that make app a's image in fmtName and returns
// the ID of the node whose output (*Image) it is. Every disk format of an
// (app, boot mode) derives from one raw disk node, which derives from the
// app's one kernel+initrd node.
func (r *planner) addImage(g *graph.Graph, p *lang.Project, a *lang.App, fmtName, boot string) string {
	pkg := r.addPackage(g, p, a, pack.Platform{Format: fmtName, Boot: boot})
	if imageID(a, fmtName, boot) == pkg {
		return pkg
	}
	if boot == "" {
		boot = pack.BootBIOS
	}
	raw := diskID(a, boot)
	g.Add(&graph.Node{ID: raw, Deps: []string{pkg}, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		return r.makeDisk(ctx, a, in[pkg].(*Image), boot)
	}})
	if fmtName == format.Raw {
		return raw
	}
	id := formatID(a, fmtName, boot)
	g.Add(&graph.Node{ID: id, Deps: []string{raw}, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		return convertDisk(ctx, in[raw].(*Image), fmtName, r.env)
	}})
	return id
}

// imageID is the ID of the node addImage returns.
func imageID(a *lang.App, fmtName, boot string) string {
	if fmtName == "" || fmtName == pack.FormatKernelInitrd {
		return packageID(a)
	}
	if boot == "" {
		boot = pack.BootBIOS
	}
	if fmtName == format.Raw {
		return diskID(a, boot)
	}
	return formatID(a, fmtName, boot)
}

// makeDisk makes (or finds in the cache) the raw disk of a direct-boot
// image: the base's own (pack.DiskMaker), or else one that boots its
// kernel and initramfs (stages/package/disk), keyed by the source image's
// digest, the boot mode and the tools the disk is made with.
func (r *planner) makeDisk(ctx context.Context, a *lang.App, src *Image, boot string) (*Image, bool, error) {
	if dm, ok := registry.Base(a.Base).(pack.DiskMaker); ok {
		b, err := dm.Disk(ctx, r.packEnv(), &pack.Built{Image: src.Image, Dir: src.Dir}, boot)
		if err != nil {
			return nil, false, err
		}
		return &Image{App: src.App, Dir: b.Dir, Image: b.Image}, b.Cached, nil
	}
	env := r.env
	tools := disk.Tools{}
	digest := tools.Digest
	if src.Image.KernelEntry == pack.KernelEntryMultiboot {
		digest = tools.MultibootDigest
	}
	toolsDigest, err := digest(boot)
	if err != nil {
		return nil, false, fmt.Errorf("package %s: %w", src.App, err)
	}
	key := (&cache.Key{}).
		Add("stage", "disk").
		Add("tool", env.ToolVersion).
		Add("source", src.Image.Digest).
		Add("memory", fmt.Sprint(src.Image.MemoryMiB)).
		Add("ports", fmt.Sprint(src.Image.Ports)).
		Add("boot", boot).
		Add("tools", toolsDigest).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := disk.Build(ctx, disk.Input{ImageDir: src.Dir, Image: src.Image, Boot: boot, Tools: tools}, dir)
		return err
	}, src.Dir)
	if err != nil {
		return nil, false, fmt.Errorf("package %s: %w", src.App, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, false, err
	}
	return &Image{App: src.App, Dir: dir, Image: img}, hit, nil
}

// convertDisk converts (or finds in the cache) a raw disk into fmtName.
func convertDisk(ctx context.Context, raw *Image, fmtName string, env *Env) (*Image, bool, error) {
	toolDigest, err := format.ToolDigest(fmtName)
	if err != nil {
		return nil, false, fmt.Errorf("package %s: %w", raw.App, err)
	}
	key := (&cache.Key{}).
		Add("stage", "format").
		Add("tool", env.ToolVersion).
		Add("raw", raw.Image.Digest).
		Add("memory", fmt.Sprint(raw.Image.MemoryMiB)).
		Add("ports", fmt.Sprint(raw.Image.Ports)).
		Add("format", fmtName).
		Add("converter", toolDigest).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := format.Convert(ctx, raw.Image, raw.Dir, fmtName, dir)
		return err
	}, raw.Dir)
	if err != nil {
		return nil, false, fmt.Errorf("package %s: %w", raw.App, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, false, err
	}
	return &Image{App: raw.App, Dir: dir, Image: img}, hit, nil
}

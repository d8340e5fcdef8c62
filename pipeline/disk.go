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
)

// BuildFormatGraph returns the graph that builds apps into images of one
// format (pack.FormatKernelInitrd or a disk format of
// stages/package/format) and boot mode ("" means bios; ignored for
// kernel+initrd).
func BuildFormatGraph(p *lang.Project, apps []*lang.App, env *Env, fmtName, boot string) *graph.Graph {
	g := graph.New()
	for _, a := range apps {
		addImage(g, p, a, env, fmtName, boot)
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
func addImage(g *graph.Graph, p *lang.Project, a *lang.App, env *Env, fmtName, boot string) string {
	pkg := addPackage(g, p, a, env, fmtName, boot)
	if imageID(a.Name, fmtName, boot) == pkg {
		return pkg
	}
	if boot == "" {
		boot = pack.BootBIOS
	}
	raw := diskID(a.Name, boot)
	g.Add(&graph.Node{ID: raw, Deps: []string{pkg}, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		return makeDisk(ctx, in[pkg].(*Image), boot, env)
	}})
	if fmtName == format.Raw {
		return raw
	}
	id := formatID(a.Name, fmtName, boot)
	g.Add(&graph.Node{ID: id, Deps: []string{raw}, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		return convertDisk(ctx, in[raw].(*Image), fmtName, env)
	}})
	return id
}

// imageID is the ID of the node addImage returns.
func imageID(app, fmtName, boot string) string {
	if fmtName == "" || fmtName == pack.FormatKernelInitrd {
		return packageID(app)
	}
	if boot == "" {
		boot = pack.BootBIOS
	}
	if fmtName == format.Raw {
		return diskID(app, boot)
	}
	return formatID(app, fmtName, boot)
}

// makeDisk makes (or finds in the cache) the raw disk of a kernel+initrd
// image. Its key is the source image's digest, the boot mode and the
// tools the disk is made with.
func makeDisk(ctx context.Context, src *Image, boot string, env *Env) (*Image, bool, error) {
	tools := disk.Tools{}
	toolsDigest, err := tools.Digest(boot)
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
	})
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
	})
	if err != nil {
		return nil, false, fmt.Errorf("package %s: %w", raw.App, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, false, err
	}
	return &Image{App: raw.App, Dir: dir, Image: img}, hit, nil
}

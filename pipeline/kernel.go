package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

// The kernel node: an app whose kernel is lang.KernelMinimal (in its
// linux block, or UNIKFILE_KERNEL=minimal for apps that name none) gets
// its kernel from a node that builds it (stages/package/linux/kbuild) for
// the app's language and the platform its image boots on. The node's ID
// names the kernel's needs, so every app with the same needs, in any
// Unikfile of the graph, shares one node and one kernel.

// kernelIDPrefix starts every kernel node's ID.
const kernelIDPrefix = "build kernel "

// minimalKernel says whether app a boots a kernel built for it.
func (env *Env) minimalKernel(a *lang.App) bool {
	if a.Linux.Kernel != "" {
		return a.Linux.Kernel == lang.KernelMinimal
	}
	return lookupEnv(env.environ(), linux.KernelEnv) == lang.KernelMinimal
}

func (env *Env) environ() []string {
	if env.Environ != nil {
		return env.Environ
	}
	return os.Environ()
}

// kernelNeeds is what a's kernel must offer for images in fmtName and boot.
func kernelNeeds(a *lang.App, fmtName, boot string) (kbuild.Needs, error) {
	return kbuild.NeedsFor(a.Language, kbuild.Platform{Format: fmtName, Boot: boot})
}

// kernelID names the node that builds the kernel for n: its features
// beyond those every kernel has, "build kernel (pvh virtio-mmio)".
func kernelID(n kbuild.Needs) string {
	return kernelIDPrefix + "(" + strings.Join(kbuild.Distinctive(n), " ") + ")"
}

// isShared says whether a node serves every Unikfile of a workspace (its
// ID is not namespaced): the guest init and the kernels.
func isShared(id string) bool { return id == initID || strings.HasPrefix(id, kernelIDPrefix) }

// addKernel adds the node that builds a's kernel for images in fmtName
// and boot, and returns its ID; "" when a does not use a built kernel.
func addKernel(g *graph.Graph, a *lang.App, env *Env, fmtName, boot string) string {
	if !env.minimalKernel(a) {
		return ""
	}
	n, err := kernelNeeds(a, fmtName, boot)
	if err != nil {
		id := kernelIDPrefix + "for " + a.Name
		g.Add(&graph.Node{ID: id, Run: func(context.Context, map[string]any) (any, bool, error) {
			return nil, false, fmt.Errorf("app %s: %w", a.Name, err)
		}})
		return id
	}
	id := kernelID(n)
	g.Add(&graph.Node{ID: id, Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
		return buildKernel(ctx, n, env)
	}})
	return id
}

// buildKernel builds (or finds) the kernel for n. With a lookup-only
// cache (unikfile graph) it only looks.
func buildKernel(ctx context.Context, n kbuild.Needs, env *Env) (*kbuild.Kernel, bool, error) {
	environ := env.environ()
	b := &kbuild.Builder{
		Root:    kbuild.Dir(env.Cache.Dir(), environ),
		Say:     func(msg string) { graph.Progress(ctx, "%s", msg) },
		Environ: environ,
	}
	// What the kernel's key depends on, for build stamps: the extracted
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

// kernelPackageID is the ID of app's kernel+initrd node. Images that boot
// directly keep packageID; with a built kernel, the kernel+initrd image a
// disk is made from holds another kernel (a bzImage with PCI, an EFI
// stub, ...), so its node is named after that kernel too.
func kernelPackageID(app string, kernelNode string, fmtName string) string {
	if kernelNode == "" || fmtName == "" || fmtName == kbuild.FormatKernelInitrd {
		return packageID(app)
	}
	label := strings.Trim(strings.TrimPrefix(kernelNode, kernelIDPrefix), "()")
	return "package " + app + " (linux, kernel+initrd, kernel " + label + ")"
}

func lookupEnv(environ []string, key string) string {
	v := ""
	for _, e := range environ {
		if rest, ok := strings.CutPrefix(e, key+"="); ok {
			v = rest
		}
	}
	return v
}

// KernelGraph is the part of plan that builds kernels: its kernel nodes.
// `unikfile kernel build` runs it to build ahead what build and up would.
func KernelGraph(plan *Plan) *graph.Graph {
	g := graph.New()
	for _, n := range plan.Graph.Nodes() {
		if strings.HasPrefix(n.ID, kernelIDPrefix) {
			g.Add(n)
		}
	}
	return g
}

// LanguageKernelGraph is the graph of the one node that builds the kernel
// an app in language needs for images in fmtName and boot, without a
// Unikfile.
func LanguageKernelGraph(language, fmtName, boot string, env *Env) *graph.Graph {
	g := graph.New()
	addKernel(g, &lang.App{Name: language + " app", Language: language, Linux: lang.LinuxSettings{Kernel: lang.KernelMinimal}}, env, fmtName, boot)
	return g
}

// MinimalByDefault makes every app that names no kernel file get a built
// kernel, as UNIKFILE_KERNEL=minimal does.
func (env *Env) MinimalByDefault() {
	env.Environ = append(append([]string(nil), env.environ()...), linux.KernelEnv+"="+lang.KernelMinimal)
}

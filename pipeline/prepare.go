package pipeline

import (
	"context"
	"os"

	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/registry"
)

// Prepared work (pack.Preparer): a base's node per distinct need of its
// apps on a platform, such as the linux base's minimal kernels. Its ID
// names the need, so every app with the same needs, in any Unikfile of
// the graph, waits for one node; the ID is not namespaced by Unikfile.

// preparedNode is the work an app's package node waits for.
type preparedNode struct {
	id    string
	label string // in the package node's ID for a disk platform
}

// addPrepared adds the node of the work base prepares for app a on plat,
// and returns it; nil when there is none.
func (r *planner) addPrepared(g *graph.Graph, base pack.Base, a *lang.App, plat pack.Platform) *preparedNode {
	pr, ok := base.(pack.Preparer)
	if !ok || base == nil {
		return nil
	}
	work, label := pr.Prepare(a, plat, r.packEnv())
	if work == nil {
		return nil
	}
	g.Add(&graph.Node{ID: work.ID, Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
		env := r.packEnv()
		env.Progress = func(msg string) { graph.Progress(ctx, "%s", msg) }
		return work.Run(ctx, env)
	}})
	r.prepared[work.ID] = true
	return &preparedNode{id: work.ID, label: label}
}

// PreparedGraph is the part of plan that prepares for packaging (the
// minimal kernels): `unikfile kernel build` runs it to build ahead what
// build and up would.
func PreparedGraph(plan *Plan) *graph.Graph {
	g := graph.New()
	for _, n := range plan.Graph.Nodes() {
		if plan.run.prepared[n.ID] {
			g.Add(n)
		}
	}
	return g
}

// LanguageKernelGraph is the graph of the one node that builds the
// minimal kernel an app in language needs for images in fmtName and boot
// on the linux base, without a Unikfile.
func LanguageKernelGraph(language, fmtName, boot string, env *Env) *graph.Graph {
	g := graph.New()
	a := &lang.App{Name: language + " app", Language: language, Base: linux.Name, BaseSettings: &linux.Settings{Kernel: linux.KernelMinimal}}
	newPlanner(env).addPrepared(g, registry.Base(linux.Name), a, pack.Platform{Format: fmtName, Boot: boot})
	return g
}

func (env *Env) environ() []string {
	if env.Environ != nil {
		return env.Environ
	}
	return os.Environ()
}

// MinimalByDefault makes every app that names no kernel file get a
// minimal kernel, as UNIKFILE_KERNEL=minimal does.
func (env *Env) MinimalByDefault() {
	env.Environ = append(append([]string(nil), env.environ()...), linux.KernelEnv+"="+linux.KernelMinimal)
}

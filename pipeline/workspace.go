package pipeline

import (
	"context"
	"strings"

	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/registry"
)

// Plan is a graph over a workspace and where the results of interest are.
type Plan struct {
	Graph *graph.Graph
	// Images maps each app built to the ID of the node that outputs its
	// image (an *Image).
	Images map[*lang.App]string
	// Deploys maps each target to the ID of its deploy node.
	Deploys map[*lang.Target]string
	// built is every image node added, by app, format and boot mode.
	built map[imageKey]string
	run   *planner
}

type imageKey struct {
	app          *lang.App
	format, boot string
}

func newPlan(env *Env) *Plan {
	return &Plan{Graph: graph.New(), Images: map[*lang.App]string{}, Deploys: map[*lang.Target]string{}, built: map[imageKey]string{}, run: newPlanner(env)}
}

// WorkspaceBuildGraph plans the compile and package nodes of apps, which
// may come from several Unikfiles of w. With one Unikfile loaded, node IDs
// are today's ("compile api"); with several, each is namespaced by its
// Unikfile's directory relative to the workspace root ("compile
// services/api:api", "compile .:web" for the root), which is also the
// address of the app. An app reached several ways is one set of nodes;
// the guest init is one node for all. Images are in fmtName and boot as
// BuildFormatGraph takes them.
func WorkspaceBuildGraph(w *lang.Workspace, apps []lang.ProjectApp, env *Env, fmtName, boot string) *Plan {
	pl := newPlan(env)
	for _, pa := range apps {
		pl.addApp(w, pa, fmtName, boot)
	}
	return pl
}

// WorkspaceUpGraph plans the nodes that build the apps of targets (their
// own and those they import from other Unikfiles) and deploy each target.
// Node IDs are as in WorkspaceBuildGraph.
func WorkspaceUpGraph(w *lang.Workspace, targets []lang.ProjectTarget, env *Env) *Plan {
	pl := newPlan(env)
	if len(w.Projects) == 1 {
		p := w.Projects[0]
		var ts []*lang.Target
		for _, pt := range targets {
			ts = append(ts, pt.Target)
		}
		pl.Graph = pl.run.upGraph(p, ts)
		for _, t := range ts {
			pl.Deploys[t] = DeployID(t.Name)
			for _, name := range t.Apps {
				pl.Images[p.App(name)] = imageID(p.App(name), t.Format, t.Boot)
			}
		}
		return pl
	}
	for _, pt := range targets {
		p, t := pt.Project, pt.Target
		var deps []string
		apps := map[string]*lang.App{}
		names := []string{}
		for _, pa := range w.TargetApps(p, t) {
			deps = append(deps, pl.addApp(w, pa, t.Format, t.Boot))
			apps[pa.App.Name] = pa.App
			names = append(names, pa.App.Name)
		}
		// The deploy stage sees one target whose apps are all listed by
		// name; LoadWorkspace made sure the names are distinct.
		merged := *t
		merged.Apps = names
		id := "deploy " + namespace(w, p) + ":" + t.Name
		pl.Graph.Add(&graph.Node{ID: id, Deps: deps, Run: deployRun(p, &merged, apps, deps, env)})
		pl.Deploys[t] = id
	}
	return pl
}

// addApp adds the nodes that build pa's image in fmtName and boot and
// returns the ID of the node that outputs it.
func (pl *Plan) addApp(w *lang.Workspace, pa lang.ProjectApp, fmtName, boot string) string {
	k := imageKey{pa.App, fmtName, boot}
	if id, ok := pl.built[k]; ok {
		return id
	}
	sub := graph.New()
	id := pl.run.addImage(sub, pa.Project, pa.App, fmtName, boot)
	rename := func(id string) string { return id }
	if len(w.Projects) > 1 {
		ns := namespace(w, pa.Project)
		rename = func(id string) string {
			if isShared(id) || pl.run.prepared[id] {
				return id // a base's shared and prepared work (the guest init, a kernel) serves every project
			}
			verb, rest, _ := strings.Cut(id, " ")
			return verb + " " + ns + ":" + rest
		}
	}
	for _, n := range sub.Nodes() {
		pl.Graph.Add(renamed(n, rename))
	}
	pl.built[k] = rename(id)
	pl.Images[pa.App] = pl.built[k]
	return pl.built[k]
}

// isShared says whether id names a base's once-per-run node.
func isShared(id string) bool {
	for _, name := range registry.BaseNames() {
		if sh := registry.Base(name).Shared(); sh != nil && sh.ID == id {
			return true
		}
	}
	return false
}

// namespace is how node IDs name p's directory: relative to the workspace
// root, "." for the root itself.
func namespace(w *lang.Workspace, p *lang.Project) string { return w.Rel(p) }

// renamed returns a copy of n with its ID and dependencies renamed; its
// work still sees its dependencies' outputs under the original IDs.
func renamed(n *graph.Node, rename func(string) string) *graph.Node {
	deps := make([]string, len(n.Deps))
	orig := map[string]string{}
	for i, d := range n.Deps {
		deps[i] = rename(d)
		orig[deps[i]] = d
	}
	run := n.Run
	return &graph.Node{ID: rename(n.ID), Deps: deps, Likely: n.Likely, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		back := make(map[string]any, len(in))
		for id, v := range in {
			back[orig[id]] = v
		}
		return run(ctx, back)
	}}
}

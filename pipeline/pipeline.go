package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/registry"
	"github.com/unikfile/unikfile/state"
)

// Env is what the stages need from the outside world. One Env may serve
// several graphs (watch builds one per edit): each graph computes what it
// memoizes (kernels, toolchains) afresh, and the executor of a Unikfile is
// chosen once per loaded Project.
type Env struct {
	Cache       *cache.Store
	State       *state.Store
	StateDir    string
	ToolVersion string
	Environ     []string  // for UNIKFILE_KERNEL and the executor; nil = os.Environ()
	Log         io.Writer // compiler output
	// Deploy options.
	Attach  bool
	Console io.Writer
	// Timeout bounds the wait for an app to be ready; 0 is the provider's
	// default.
	Timeout time.Duration

	// Digests, if set, digests files (sources, the init, the CA bundle)
	// from their metadata when they did not change.
	Digests *cache.StatCache
	// Executor overrides the Unikfile's build executor (--executor); "" keeps it.
	Executor string
	// Changed lists paths, sorted, that changed since the last identical
	// build (stamp.Changed). They only order the graph: an app whose
	// source folder holds one is compiled and packaged before the others
	// are checked (graph.Node.Likely).
	Changed   []string
	executors executors
}

// changedUnder reports whether a path of env.Changed is dir or below it.
func (env *Env) changedUnder(dir string) bool {
	if dir == "" {
		return false
	}
	dir = filepath.Clean(dir)
	i, _ := slices.BinarySearch(env.Changed, dir)
	for ; i < len(env.Changed); i++ {
		c := env.Changed[i]
		if !strings.HasPrefix(c, dir) {
			return false
		}
		if len(c) == len(dir) || c[len(dir)] == filepath.Separator {
			return true
		}
	}
	return false
}

// Image is the output of a package node.
type Image struct {
	App   string
	Dir   string
	Image *pack.Image
}

// planner is one graph's view of Env: the memos of what its nodes would
// otherwise compute again.
type planner struct {
	env        *Env
	memo       *pack.Memo
	toolchains *compile.Memo
	// prepared holds the IDs of the nodes added for pack.Preparer.
	prepared map[string]bool
}

func newPlanner(env *Env) *planner {
	return &planner{env: env, memo: &pack.Memo{}, toolchains: &compile.Memo{}, prepared: map[string]bool{}}
}

func (r *planner) packEnv() *pack.Env {
	return &pack.Env{Cache: r.env.Cache, ToolVersion: r.env.ToolVersion, Digests: r.env.Digests, Environ: r.env.Environ, Memo: r.memo}
}

// Node IDs. They are what the progress output and the summary show.
func compileID(app string) string { return "compile " + app }

// packageID is the node that makes app's direct-boot image on its base,
// diskID the one that makes its raw disk for a boot mode, formatID the one
// that converts that into another disk format.
func packageID(a *lang.App) string { return "package " + a.Name + " (" + a.Base + ", kernel+initrd)" }
func diskID(a *lang.App, boot string) string {
	return "package " + a.Name + " (" + a.Base + ", raw, " + boot + ")"
}
func formatID(a *lang.App, format, boot string) string {
	return "package " + a.Name + " (" + a.Base + ", " + format + ", " + boot + ")"
}

// DeployID is the ID of the node that deploys target.
func DeployID(target string) string { return "deploy " + target }

// BuildGraph returns the graph that builds apps (compile and package).
func BuildGraph(p *lang.Project, apps []*lang.App, env *Env) *graph.Graph {
	return BuildFormatGraph(p, apps, env, pack.FormatKernelInitrd, "")
}

// UpGraph returns the graph that builds the apps of targets and deploys them.
func UpGraph(p *lang.Project, targets []*lang.Target, env *Env) *graph.Graph {
	return newPlanner(env).upGraph(p, targets)
}

func (r *planner) upGraph(p *lang.Project, targets []*lang.Target) *graph.Graph {
	env := r.env
	g := graph.New()
	for _, t := range targets {
		var deps []string
		for _, name := range t.Apps {
			deps = append(deps, r.addImage(g, p, p.App(name), t.Format, t.Boot))
		}
		g.Add(&graph.Node{ID: DeployID(t.Name), Deps: deps, Run: deployRun(p, t, appsOf(p, t), deps, env)})
	}
	return g
}

// deployRun is the work of a deploy node: bring target t of p up with the
// images its dependencies (package nodes) produced. apps holds the
// target's apps by name.
func deployRun(p *lang.Project, t *lang.Target, apps map[string]*lang.App, deps []string, env *Env) func(ctx context.Context, in map[string]any) (any, bool, error) {
	return func(ctx context.Context, in map[string]any) (any, bool, error) {
		images := map[string]deploy.AppImage{}
		for _, d := range deps {
			img := in[d].(*Image)
			images[img.App] = deploy.AppImage{Image: img.Image, Dir: img.Dir}
		}
		results, err := deploy.Up(ctx, env.State, registry.Providers(), deploy.UpRequest{
			Project:  p.Dir,
			Target:   t,
			Apps:     apps,
			Images:   images,
			RunRoot:  filepath.Join(env.StateDir, "instances"),
			Timeout:  env.Timeout,
			Attach:   env.Attach,
			Console:  env.Console,
			Progress: func(msg string) { graph.Progress(ctx, "%s", msg) },
		})
		unchanged := err == nil
		for _, r := range results {
			if r.Action != deploy.ActionUnchanged {
				unchanged = false
			}
		}
		return results, unchanged, err
	}
}

func appsOf(p *lang.Project, t *lang.Target) map[string]*lang.App {
	m := map[string]*lang.App{}
	for _, n := range t.Apps {
		m[n] = p.App(n)
	}
	return m
}

// addPackage adds the nodes that compile a and make its direct-boot image
// on its base (with the base's shared work, once for every app, and the
// work it prepares for the platform the image is for: see pack.Preparer),
// and returns the ID of the node whose output is the image.
func (r *planner) addPackage(g *graph.Graph, p *lang.Project, a *lang.App, plat pack.Platform) string {
	base := registry.Base(a.Base)
	var shared *pack.Shared
	if base != nil {
		if shared = base.Shared(); shared != nil {
			g.Add(&graph.Node{ID: shared.ID, Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
				return shared.Run(ctx, r.packEnv())
			}})
		}
	}
	g.Add(&graph.Node{ID: compileID(a.Name), Likely: r.env.changedUnder(a.Source), Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
		res, err := r.compileApp(ctx, p, a)
		if err != nil {
			return nil, false, err
		}
		return res, res.Cached, nil
	}})
	prepared := r.addPrepared(g, base, a, plat)
	id := packageID(a)
	if prepared != nil && !plat.Direct() {
		// Disks of this platform are made from an image of their own.
		id = "package " + a.Name + " (" + a.Base + ", kernel+initrd, " + prepared.label + ")"
	}
	if base == nil {
		g.Add(&graph.Node{ID: id, Deps: []string{compileID(a.Name)}, Run: func(context.Context, map[string]any) (any, bool, error) {
			return nil, false, fmt.Errorf("app %s: base %q is not built by this version of unikfile", a.Name, a.Base)
		}})
		return id
	}
	deps := []string{compileID(a.Name)}
	if shared != nil {
		deps = append(deps, shared.ID)
	}
	if prepared != nil {
		deps = append(deps, prepared.id)
	}
	g.Add(&graph.Node{ID: id, Deps: deps, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		pin := pack.Input{App: a, Bundle: in[compileID(a.Name)].(*compile.Result), Platform: plat}
		if shared != nil {
			pin.Shared = in[shared.ID]
		}
		if prepared != nil {
			pin.Prepared = in[prepared.id]
		}
		b, err := base.Package(ctx, r.packEnv(), pin)
		if err != nil {
			return nil, false, err
		}
		return &Image{App: a.Name, Dir: b.Dir, Image: b.Image}, b.Cached, nil
	}})
	return id
}

// Stage names the stage a node of these graphs belongs to, for timings by
// stage: "compile", "package" (disks and formats too) or "deploy", and a
// base's shared work by its own ID ("build guest init").
func Stage(id string) string {
	if isShared(id) {
		return id
	}
	verb, _, _ := strings.Cut(id, " ")
	return verb
}

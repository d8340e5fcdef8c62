package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/providers"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
	"github.com/unikfile/unikfile/state"
)

// Env is what the stages need from the outside world.
type Env struct {
	Cache       *cache.Store
	State       *state.Store
	StateDir    string
	ToolVersion string
	Environ     []string  // for UNIKFILE_KERNEL; nil = os.Environ()
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
	memo    memo
	// Executor overrides the Unikfile's build executor (--executor); "" keeps it.
	Executor  string
	executors executors
}

// Image is the output of a package node.
type Image struct {
	App   string
	Dir   string
	Image *pack.Image
}

// Node IDs. They are what the progress output and the summary show.
func compileID(app string) string { return "compile " + app }
func packageID(app string) string { return "package " + app + " (linux, kernel+initrd)" }

// diskID is the node that makes app's raw disk for a boot mode; formatID
// the one that converts it into another disk format.
func diskID(app, boot string) string { return "package " + app + " (linux, raw, " + boot + ")" }
func formatID(app, format, boot string) string {
	return "package " + app + " (linux, " + format + ", " + boot + ")"
}

// DeployID is the ID of the node that deploys target.
func DeployID(target string) string { return "deploy " + target }

const initID = "build guest init"

// BuildGraph returns the graph that builds apps (compile and package).
func BuildGraph(p *lang.Project, apps []*lang.App, env *Env) *graph.Graph {
	return BuildFormatGraph(p, apps, env, pack.FormatKernelInitrd, "")
}

// UpGraph returns the graph that builds the apps of targets and deploys them.
func UpGraph(p *lang.Project, targets []*lang.Target, env *Env) *graph.Graph {
	g := graph.New()
	for _, t := range targets {
		var deps []string
		for _, name := range t.Apps {
			deps = append(deps, addImage(g, p, p.App(name), env, t.Format, t.Boot))
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
		results, err := deploy.Up(ctx, env.State, providers.Registry(), deploy.UpRequest{
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

// addPackage adds the nodes of app a's kernel+initrd image, from which
// images in fmtName and boot are made, and returns its ID.
func addPackage(g *graph.Graph, p *lang.Project, a *lang.App, env *Env, fmtName, boot string) string {
	g.Add(&graph.Node{ID: initID, Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
		return buildInit(ctx, env)
	}})
	g.Add(&graph.Node{ID: compileID(a.Name), Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
		res, err := compileApp(ctx, p, a, env)
		if err != nil {
			return nil, false, err
		}
		return res, res.Cached, nil
	}})
	kn := addKernel(g, a, env, fmtName, boot)
	id := kernelPackageID(a.Name, kn, fmtName)
	deps := []string{compileID(a.Name), initID}
	if kn != "" {
		deps = append(deps, kn)
	}
	g.Add(&graph.Node{ID: id, Deps: deps, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		var built *kbuild.Kernel
		if kn != "" {
			built = in[kn].(*kbuild.Kernel)
		}
		return packageApp(ctx, p, a, in[compileID(a.Name)].(*compile.Result), in[initID].(string), built, env)
	}})
	return id
}

// buildInit builds the guest init once per init source and Go toolchain.
func buildInit(ctx context.Context, env *Env) (string, bool, error) {
	// guest.Build pins GOOS, GOARCH, GOAMD64, GOFLAGS and CGO; what it
	// inherits from this environment is below.
	gover, err := run.Run(ctx, run.Cmd{Path: "go", Args: []string{"env", "-json", "GOVERSION", "GOROOT", "GOEXPERIMENT", "GODEBUG"},
		Hint: "the guest init is built with Go: install Go (https://go.dev/doc/install) and put it in PATH"})
	if err != nil {
		return "", false, err
	}
	key := (&cache.Key{}).Add("stage", "init").Add("source", guest.SourceDigest()).Add("go", strings.TrimSpace(string(gover.Stdout))).Sum()
	dir, hit, err := env.Cache.Fill(ctx, "init", key, func(ctx context.Context, dir string) error {
		return guest.Build(ctx, "go", filepath.Join(dir, "init"))
	})
	if err != nil {
		return "", false, fmt.Errorf("build guest init: %w", err)
	}
	return filepath.Join(dir, "init"), hit, nil
}

// packageApp makes app a's kernel+initrd image with built, a kernel built
// for it, or else the kernel its settings name.
func packageApp(ctx context.Context, p *lang.Project, a *lang.App, bundle *compile.Result, initBin string, built *kbuild.Kernel, env *Env) (*Image, bool, error) {
	if a.Base != "linux" {
		return nil, false, fmt.Errorf("app %s: base %q cannot be built by this version of unikfile (supported: linux)", a.Name, a.Base)
	}
	var k *linux.Kernel
	var modDigest string
	if built != nil {
		k = built.Linux() // every driver built in: no modules
	} else {
		var err error
		k, modDigest, err = env.kernel(a.Linux.Kernel, env.environ()) // lang made it absolute
		if err != nil {
			return nil, false, fmt.Errorf("package %s: %w", a.Name, err)
		}
	}
	initDigest, err := env.Digests.FileDigest(initBin)
	if err != nil {
		return nil, false, err
	}
	// The host's CA bundle goes into the image, so it is an input.
	caDigest, _ := env.Digests.FileDigest(linux.HostCACerts)
	cfg := guest.Config{
		App:   a.Name,
		Argv:  append(bundle.Manifest.Command(), a.Args...),
		Env:   appEnv(bundle.Manifest.Env, a.Env),
		Dir:   bundle.Manifest.Dir,
		Ports: append([]int(nil), a.Ports...),
	}
	memory := appMemory(a, &bundle.Manifest)
	cfgJSON, _ := json.Marshal(cfg)
	key := (&cache.Key{}).
		Add("stage", "package").
		Add("tool", env.ToolVersion).
		Add("base", "linux").
		Add("format", "kernel+initrd").
		Add("bundle", bundle.Manifest.Key).
		Add("kernel", k.Digest).
		Add("modules", modDigest).
		Add("init", initDigest).
		Add("ca-certificates", caDigest).
		Add("config", string(cfgJSON)).
		Add("cmdline", a.Linux.Cmdline).
		Add("memory", strconv.Itoa(memory)).
		Sum()
	dir, hit, err := env.Cache.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
		_, err := linux.Build(ctx, linux.Input{
			BundleRoot:   filepath.Join(bundle.Dir, compile.RootfsDir),
			Config:       cfg,
			Kernel:       k,
			InitBinary:   initBin,
			ExtraCmdline: a.Linux.Cmdline,
			MemoryMiB:    memory,
		}, dir)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("package %s: %w", a.Name, err)
	}
	img, err := pack.ReadImage(dir)
	if err != nil {
		return nil, false, err
	}
	return &Image{App: a.Name, Dir: dir, Image: img}, hit, nil
}

// appEnv is the bundle's runtime environment overridden by the app's env.
func appEnv(runtime []string, app map[string]string) []string {
	m := map[string]string{}
	for _, e := range runtime {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	for k, v := range app {
		m[k] = v
	}
	return sortedEnv(m)
}

// appMemory is the app's memory, raised to what the bundle needs (a
// runtime, a large image) when the Unikfile does not set it.
func appMemory(a *lang.App, man *compile.Manifest) int {
	if !a.MemorySet && man.MemoryMiB > a.MemoryMiB {
		return man.MemoryMiB
	}
	return a.MemoryMiB
}

func sortedEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

package buildkit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
)

// language is how one language compiles inside a builder image: a recipe
// of LLB that makes the bundle folder, and what is left to do once it is
// exported.
type language interface {
	// DefaultImage is the builder image when the app names none: the
	// ecosystem's official image at the version of the host's toolchain.
	DefaultImage(ctx context.Context) string
	// Build returns the state of the bundle folder: rootfs/ (the tree
	// placed at / in the image) and meta/ (what Finish reads; removed
	// before the bundle is stored). It may solve states and read their
	// files with r on the way (the recipe's own answers, such as where the
	// builder's interpreter lives).
	Build(ctx context.Context, r *recipe) (llb.State, error)
	// Finish completes the exported bundle folder (the shared-library
	// closure, read from the builder image) and says how to start the
	// program.
	Finish(ctx context.Context, f *finish) (compile.Launch, error)
}

// hostSettings is implemented by languages whose recipe reads settings of
// the machine unikfile runs on; they are part of the compile key.
type hostSettings interface {
	HostSettings() string
}

// Supports says whether the buildkit executor can compile language.
func Supports(language string) bool {
	_, ok := languages[language]
	return ok
}

// languages is the table of recipes, one file each.
var languages = map[string]language{
	"go":     goLang{},
	"c":      cLang{cxx: false},
	"cpp":    cLang{cxx: true},
	"rust":   rustLang{},
	"python": pythonLang{},
	"node":   nodeLang{},
	"java":   javaLang{},
}

func supported() []string {
	var names []string
	for n := range languages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Mount points and folders inside the builder.
const (
	srcDir   = "/src"  // the app's source, read-only
	outDir   = "/out"  // the bundle folder
	workDir  = "/work" // a writable copy of the source, for builds that write into it
	cacheDir = "/unikfile-cache"
	metaDir  = "meta" // in the bundle folder
)

// outRootfs is the bundle's root inside the builder.
var outRootfs = outDir + "/" + compile.RootfsDir

// recipe is what a language's Build works with.
type recipe struct {
	app     *lang.App
	builder llb.State         // the builder image, with its configuration
	env     map[string]string // the builder image's environment
	src     llb.State         // the app's source, without what the ignore files leave out
	program string            // the program's path in the bundle
	step    string            // the name prefix of the recipe's compile steps
	gc      gateway.Client
	imports []gateway.CacheOptionsEntry
}

func (e *Executor) newRecipe(app *lang.App, pinned string, config []byte, program string) (*recipe, error) {
	builder, err := llb.Image(pinned, llb.Platform(amd64)).WithImageConfig(config)
	if err != nil {
		return nil, fmt.Errorf("builder image %s: %w", pinned, err)
	}
	var img ocispecs.Image
	if err := json.Unmarshal(config, &img); err != nil {
		return nil, fmt.Errorf("builder image %s: its configuration: %w", pinned, err)
	}
	env := map[string]string{}
	for _, kv := range img.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	ex, err := excludes(app.Source)
	if err != nil {
		return nil, err
	}
	source := llb.Local("source", llb.ExcludePatterns(ex), llb.SharedKeyHint("unikfile:"+app.Source),
		llb.WithCustomNamef("[%s] source %s", app.Name, app.Source))
	return &recipe{
		app: app, builder: builder, env: env, src: source, program: program,
		step: fmt.Sprintf("[%s] %s build", app.Name, app.Language),
	}, nil
}

// named names a compile step of the recipe.
func (r *recipe) named(what string) llb.RunOption {
	return llb.WithCustomName(r.step + " " + what)
}

// sh runs script with /bin/sh -ec in the builder as a compile step named
// what, in dir.
func (r *recipe) sh(what, dir, script string, opts ...llb.RunOption) llb.ExecState {
	all := append([]llb.RunOption{
		llb.Args([]string{"/bin/sh", "-ec", script}),
		llb.Dir(dir),
		llb.AddMount(srcDir, r.src, llb.Readonly),
		r.named(what),
	}, opts...)
	return r.builder.Run(all...)
}

// getenv is the builder image's variable k, or def.
func (r *recipe) getenv(k, def string) string {
	if v, ok := r.env[k]; ok && v != "" {
		return v
	}
	return def
}

// emptyOut is a bundle folder with an empty rootfs and meta folder.
func emptyOut() llb.State {
	return llb.Scratch().File(llb.Mkdir("/"+compile.RootfsDir, 0o755).Mkdir("/"+metaDir, 0o755),
		llb.WithCustomName("[unikfile] bundle folder"))
}

// solve solves st in the recipe's session.
func (r *recipe) solve(ctx context.Context, st llb.State) (gateway.Reference, error) {
	def, err := st.Marshal(ctx, llb.Platform(amd64))
	if err != nil {
		return nil, err
	}
	res, err := r.gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), CacheImports: r.imports})
	if err != nil {
		return nil, err
	}
	return res.SingleRef()
}

// read solves st and returns its file.
func (r *recipe) read(ctx context.Context, st llb.State, file string) ([]byte, error) {
	ref, err := r.solve(ctx, st)
	if err != nil {
		return nil, err
	}
	return ref.ReadFile(ctx, gateway.ReadRequest{Filename: file})
}

// recipeError is a recipe's own verdict (a bad answer from the builder,
// say), returned as it is rather than as a failed step.
type recipeError struct{ err error }

func (e *recipeError) Error() string { return e.err.Error() }
func (e *recipeError) Unwrap() error { return e.err }

// finish is what a language's Finish works with.
type finish struct {
	app    *lang.App
	dir    string     // the exported bundle folder
	rootfs string     // dir/rootfs
	meta   string     // dir/meta
	from   elfdeps.FS // the builder image, read on demand
}

// readMeta reads a file the recipe wrote into the meta folder.
func (f *finish) readMeta(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(f.meta, name))
	if err != nil {
		return "", fmt.Errorf("the recipe left no %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// q quotes s for /bin/sh.
func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// qs quotes each of args for /bin/sh and joins them.
func qs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = q(a)
	}
	return strings.Join(out, " ")
}

func gatewayRead(file string) gateway.ReadRequest { return gateway.ReadRequest{Filename: file} }

// trimLine is a one-line answer of a recipe step.
func trimLine(b []byte) string { return strings.TrimSpace(string(b)) }

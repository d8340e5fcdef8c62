package buildkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
)

// Executor compiles apps on one buildkitd. Its methods may be called from
// several goroutines: each compile is its own solve on the shared client.
type Executor struct {
	c *client.Client
	s Settings
}

func newExecutor(c *client.Client, s Settings) *Executor { return &Executor{c: c, s: s} }

// Host is the address of the buildkitd the executor talks to.
func (e *Executor) Host() string { return e.s.Host }

// Close closes the connection.
func (e *Executor) Close() error { return e.c.Close() }

// Options carry what a compile needs besides the app.
type Options struct {
	Cache       *cache.Store
	ToolVersion string
	// Progress receives BuildKit's progress display (plain mode), one line
	// at a time, the compiler's output included; nil discards it.
	Progress func(line string)
	// Digests, if set, digests source files from their metadata when
	// they did not change (cache.StatCache).
	Digests *cache.StatCache
}

// Outcome is a compiled bundle and what BuildKit did for it.
type Outcome struct {
	*compile.Result
	// Builder is the builder image, pinned to the digest it resolved to.
	Builder string
	// StepCached is true when BuildKit had the compile step's result in its
	// cache (its own or one imported with cache_from) and did not run the
	// compiler. It is false when the bundle came from unikfile's cache.
	StepCached bool
}

// CompileOutcome builds app in its builder image on buildkitd and stores the
// bundle in opts.Cache, or returns the cached bundle when nothing it
// depends on changed (the source, the builder image's digest, the entry
// point, the settings of the host the recipe reads, unikfile's version).
func (e *Executor) CompileOutcome(ctx context.Context, app *lang.App, opts Options) (*Outcome, error) {
	if t, err := compile.TargetFor(app.Base); err != nil || t.Name != "linux" {
		return nil, fmt.Errorf("app %s: the buildkit executor compiles for the linux base only, not base %q yet; use --executor local", app.Name, app.Base)
	}
	ll, ok := languages[app.Language]
	if !ok {
		return nil, fmt.Errorf("app %s: language %q cannot be compiled by the buildkit executor (supported: %s); use --executor local",
			app.Name, app.Language, strings.Join(supported(), ", "))
	}
	l, err := compile.Lookup(app.Language)
	if err != nil {
		return nil, err
	}
	extra, err := l.ExtraInputs(app)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", app.Name, err)
	}
	for _, dir := range extra {
		if rel, err := filepath.Rel(app.Source, dir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("compile %s: %s is outside the app's source %s, and the buildkit executor sends only the source to buildkitd; "+
				"move it inside the source, or use --executor local", app.Name, dir, app.Source)
		}
	}
	ref := app.Builder
	if ref == "" {
		ref = ll.DefaultImage(ctx)
	}
	pinned, config, err := e.resolve(ctx, ref)
	if err != nil {
		hint := fmt.Sprintf("push it there, or set builder = \"IMAGE\" in app %q", app.Name)
		if app.Builder == "" {
			hint = fmt.Sprintf("the default builder for %s is %s from Docker Hub: let buildkitd reach it, or set builder = \"IMAGE\" in app %q to an image with the toolchain", app.Language, ref, app.Name)
		}
		return nil, fmt.Errorf("compile %s: builder image %s: buildkitd at %s cannot resolve it (%s); %s", app.Name, ref, e.s.Host, shortErr(err), hint)
	}
	src, err := compile.SourceDigest(app, extra, opts.Digests)
	if err != nil {
		return nil, err
	}
	program := l.Program(app)
	key := (&cache.Key{}).
		Add("stage", "compile").
		Add("tool", opts.ToolVersion).
		Add("executor", "buildkit").
		Add("language", app.Language).
		Add("builder", pinned).
		Add("source", src).
		Add("main", app.Main).
		Add("program", program)
	if h, ok := ll.(hostSettings); ok {
		key.Add("host", h.HostSettings())
	}
	out := &Outcome{Builder: pinned}
	dir, hit, err := opts.Cache.Fill(ctx, "bundles", key.Sum(), func(ctx context.Context, dir string) error {
		r, err := e.newRecipe(app, pinned, config, program)
		if err != nil {
			return err
		}
		rec, err := e.compileSession(ctx, r, dir, opts.Progress)
		if err != nil {
			return err
		}
		out.StepCached = rec.allCached()
		from := newImageFS(ctx, e, app, pinned, opts.Progress)
		launch, err := ll.Finish(ctx, &finish{app: app, dir: dir, rootfs: filepath.Join(dir, compile.RootfsDir), meta: filepath.Join(dir, metaDir), from: from})
		if cerr := from.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("compile %s: %w", app.Name, err)
		}
		if err := os.RemoveAll(filepath.Join(dir, metaDir)); err != nil {
			return err
		}
		return compile.FinishBundle(dir, compile.Manifest{App: app.Name, Language: app.Language, Toolchain: pinned, Program: program, Key: key.Sum()}, launch)
	})
	if err != nil {
		return nil, err
	}
	res, err := compile.ReadBundle(dir, hit)
	if err != nil {
		return nil, err
	}
	out.Result = res
	return out, nil
}

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// resolve asks buildkitd for ref's digest and configuration, so that the
// cache key and the solve name the same image.
func (e *Executor) resolve(ctx context.Context, ref string) (pinned string, config []byte, err error) {
	_, err = e.c.Build(ctx, client.SolveOpt{}, "unikfile", func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
		_, dgst, cfg, err := c.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &amd64, ResolveMode: "default"},
		})
		if err != nil {
			return nil, err
		}
		pinned, config = ref, cfg
		if !strings.Contains(ref, "@") {
			pinned = ref + "@" + dgst.String()
		}
		return gateway.NewResult(), nil
	}, nil)
	return pinned, config, err
}

// compileSession runs app's recipe on buildkitd with its source, exports
// the bundle folder it makes into dir, and reports what BuildKit did for
// the recipe's compile steps.
func (e *Executor) compileSession(ctx context.Context, r *recipe, dir string, progress func(string)) (*stepRecord, error) {
	srcFS, err := fsutil.NewFS(r.app.Source)
	if err != nil {
		return nil, err
	}
	imports, err := e.cacheOptions(r.app, e.s.CacheFrom, "src")
	if err != nil {
		return nil, err
	}
	exports, err := e.cacheOptions(r.app, e.s.CacheTo, "dest")
	if err != nil {
		return nil, err
	}
	for _, im := range imports {
		r.imports = append(r.imports, gateway.CacheOptionsEntry{Type: im.Type, Attrs: im.Attrs})
	}
	opt := client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{"source": srcFS},
		// Not nil: BuildKit copies the cache imports into it.
		FrontendAttrs: map[string]string{},
		Exports:       []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: dir}},
		CacheImports:  imports,
		CacheExports:  exports,
		SharedKey:     sharedKey(),
	}
	rec := &stepRecord{prefix: r.step}
	err = e.session(ctx, opt, func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		r.gc = gc
		st, err := languages[r.app.Language].Build(ctx, r)
		if err != nil {
			return nil, err
		}
		ref, err := r.solve(ctx, st)
		if err != nil {
			return nil, err
		}
		res := gateway.NewResult()
		res.SetRef(ref)
		return res, nil
	}, rec, progress)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var re *recipeError
		if errors.As(err, &re) {
			return nil, re.err
		}
		if rec.failed {
			return nil, fmt.Errorf("%s build of app %s failed in builder image on buildkitd at %s:\n%s", r.app.Language, r.app.Name, e.s.Host, rec.tail())
		}
		return nil, fmt.Errorf("compile %s on buildkitd at %s: %s", r.app.Name, e.s.Host, shortErr(err))
	}
	return rec, nil
}

// session runs one gateway build, shows its progress and records the
// steps whose names start with rec's prefix (rec may be nil).
func (e *Executor) session(ctx context.Context, opt client.SolveOpt, build gateway.BuildFunc, rec *stepRecord, progress func(string)) error {
	lw := &lineWriter{emit: progress}
	disp, err := progressui.NewDisplay(lw, progressui.PlainMode)
	if err != nil {
		return err
	}
	status := make(chan *client.SolveStatus)
	shown := make(chan *client.SolveStatus)
	var eg errgroup.Group
	eg.Go(func() error {
		defer close(shown)
		for s := range status {
			if rec != nil {
				rec.add(s)
			}
			shown <- s
		}
		return nil
	})
	eg.Go(func() error {
		// The display drains shown until it is closed, even when ctx ends;
		// should it stop early, the rest is drained here so that the solve
		// never blocks on its status channel.
		_, err := disp.UpdateFrom(context.WithoutCancel(ctx), shown)
		for range shown {
		}
		return err
	})
	_, err = e.c.Build(ctx, opt, "unikfile", build, status)
	eg.Wait()
	lw.Flush()
	return err
}

// cacheOptions turns the Unikfile's cache specs into BuildKit's for app,
// making a local cache's folder (pathKey) absolute against the project.
// Each app gets its own entry in a shared cache (a registry ref's tag, a
// local cache's tag, suffixed with the app's name): BuildKit's last
// export to a ref replaces the ref, so apps compiling at once into one
// ref would keep only the last one's cache.
func (e *Executor) cacheOptions(app *lang.App, specs []lang.CacheSpec, pathKey string) ([]client.CacheOptionsEntry, error) {
	var out []client.CacheOptionsEntry
	for _, s := range specs {
		attrs := map[string]string{}
		for k, v := range s.Attrs {
			attrs[k] = v
		}
		switch s.Type {
		case "registry":
			if attrs["ref"] != "" {
				attrs["ref"] = appRef(attrs["ref"], app.Name)
			}
		case "local":
			if attrs["tag"] == "" {
				attrs["tag"] = app.Name
			} else {
				attrs["tag"] += "-" + app.Name
			}
			if attrs[pathKey] != "" && !filepath.IsAbs(attrs[pathKey]) {
				attrs[pathKey] = filepath.Join(e.s.ProjectDir, attrs[pathKey])
			}
			if pathKey == "src" {
				// A local cache that does not exist yet is an empty cache.
				if _, err := os.Stat(filepath.Join(attrs[pathKey], "index.json")); errors.Is(err, os.ErrNotExist) {
					continue
				}
			}
		}
		out = append(out, client.CacheOptionsEntry{Type: s.Type, Attrs: attrs})
	}
	return out, nil
}

// appRef is the registry cache ref of app in the cache ref: its tag
// ("latest" when it has none) followed by "-" and the app's name.
func appRef(ref, app string) string {
	name, digest, _ := strings.Cut(ref, "@")
	if digest != "" {
		return ref // a pinned cache is read as it is
	}
	tag := "latest"
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	return name + ":" + tag + "-" + app
}

// sharedKey lets buildkitd reuse a previous transfer of the same source
// from this machine, sending only what changed.
func sharedKey() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return "unikfile-" + h
}

// stepRecord follows the recipe's compile steps (the execs whose names
// start with prefix) through a session's status stream.
type stepRecord struct {
	mu       sync.Mutex
	prefix   string
	vertices map[string]bool // compile steps seen: digest -> cached
	failed   bool
	log      []byte
}

const maxLog = 16 << 10

func (r *stepRecord) add(s *client.SolveStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.vertices == nil {
		r.vertices = map[string]bool{}
	}
	for _, v := range s.Vertexes {
		if !strings.HasPrefix(v.Name, r.prefix) {
			continue
		}
		d := v.Digest.String()
		r.vertices[d] = r.vertices[d] || v.Cached
		if v.Error != "" {
			r.failed = true
		}
	}
	for _, l := range s.Logs {
		if _, ok := r.vertices[l.Vertex.String()]; ok {
			r.log = append(r.log, l.Data...)
			if len(r.log) > maxLog {
				r.log = r.log[len(r.log)-maxLog:]
			}
		}
	}
}

// allCached reports whether BuildKit took every compile step from its
// cache: the compiler did not run.
func (r *stepRecord) allCached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cached := range r.vertices {
		if !cached {
			return false
		}
	}
	return len(r.vertices) > 0
}

// tail is the compiler's output.
func (r *stepRecord) tail() string {
	s := strings.TrimRight(string(r.log), "\n")
	if s == "" {
		return "(the compiler printed nothing)"
	}
	return s
}

// lineWriter hands whole lines to emit.
type lineWriter struct {
	mu   sync.Mutex
	emit func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		if w.emit != nil && strings.TrimSpace(line) != "" {
			w.emit(line)
		}
	}
	return len(p), nil
}

// Flush emits a last unterminated line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 && w.emit != nil {
		w.emit(string(w.buf))
	}
	w.buf = nil
}

var _ io.Writer = (*lineWriter)(nil)

var _ compile.Executor = (*Executor)(nil)

// Name is "buildkit".
func (e *Executor) Name() string { return Name }

// Supports reports whether BuildKit has a builder for app: its language, on
// the linux base (the only one the recipes compile for).
func (e *Executor) Supports(app *lang.App) bool {
	t, err := compile.TargetFor(app.Base)
	return err == nil && t.Name == "linux" && Supports(app.Language)
}

// Compile compiles app on buildkitd as CompileOutcome does, and says on
// opts.Progress when BuildKit found the compile step in its cache.
func (e *Executor) Compile(ctx context.Context, app *lang.App, opts compile.Options) (*compile.Result, error) {
	out, err := e.CompileOutcome(ctx, app, Options{Cache: opts.Cache, ToolVersion: opts.ToolVersion, Digests: opts.Digests, Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	if out.StepCached && opts.Progress != nil {
		opts.Progress(fmt.Sprintf("compile step found in BuildKit's cache (%s): the compiler did not run", out.Builder))
	}
	return out.Result, nil
}

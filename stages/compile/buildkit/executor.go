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
	"github.com/moby/buildkit/client/llb"
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
// point, unikfile's version).
func (e *Executor) CompileOutcome(ctx context.Context, app *lang.App, opts Options) (*Outcome, error) {
	if t, err := compile.TargetFor(app.Base); err != nil || t.Name != "linux" {
		return nil, fmt.Errorf("app %s: the buildkit executor compiles for the linux base only, not base %q yet; use --executor local", app.Name, app.Base)
	}
	ll, ok := languages[app.Language]
	if !ok {
		return nil, fmt.Errorf("app %s: language %q cannot be compiled by the buildkit executor yet (supported: go); use --executor local", app.Name, app.Language)
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
		Add("program", program).
		Sum()
	out := &Outcome{Builder: pinned}
	dir, hit, err := opts.Cache.Fill(ctx, "bundles", key, func(ctx context.Context, dir string) error {
		builder, err := llb.Image(pinned, llb.Platform(amd64)).WithImageConfig(config)
		if err != nil {
			return fmt.Errorf("builder image %s: %w", pinned, err)
		}
		ex, err := excludes(app.Source)
		if err != nil {
			return err
		}
		source := llb.Local("source", llb.ExcludePatterns(ex), llb.SharedKeyHint("unikfile:"+app.Source),
			llb.WithCustomNamef("[%s] source %s", app.Name, app.Source))
		main := app.Main
		if main == "" {
			main = "."
		}
		step := fmt.Sprintf("[%s] %s build %s", app.Name, app.Language, main)
		st := ll.Compile(app, builder, source, program, step)
		def, err := st.Marshal(ctx, llb.Platform(amd64))
		if err != nil {
			return err
		}
		rootfs := filepath.Join(dir, compile.RootfsDir)
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return err
		}
		cached, err := e.solve(ctx, app, def, rootfs, step, opts.Progress)
		if err != nil {
			return err
		}
		out.StepCached = cached
		return compile.FinishBundle(dir, compile.Manifest{App: app.Name, Language: app.Language, Toolchain: pinned, Program: program, Key: key}, compile.Launch{})
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

// solve runs def with the source of app, exports the result into outDir,
// and reports whether the step named step was a cache hit.
func (e *Executor) solve(ctx context.Context, app *lang.App, def *llb.Definition, outDir, step string, progress func(string)) (bool, error) {
	srcFS, err := fsutil.NewFS(app.Source)
	if err != nil {
		return false, err
	}
	imports, err := e.cacheOptions(e.s.CacheFrom, "src")
	if err != nil {
		return false, err
	}
	exports, err := e.cacheOptions(e.s.CacheTo, "dest")
	if err != nil {
		return false, err
	}
	opt := client.SolveOpt{
		LocalMounts:  map[string]fsutil.FS{"source": srcFS},
		Exports:      []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: outDir}},
		CacheImports: imports,
		CacheExports: exports,
		SharedKey:    sharedKey(),
	}
	lw := &lineWriter{emit: progress}
	disp, err := progressui.NewDisplay(lw, progressui.PlainMode)
	if err != nil {
		return false, err
	}
	status := make(chan *client.SolveStatus)
	shown := make(chan *client.SolveStatus)
	var rec stepRecord
	var eg errgroup.Group
	eg.Go(func() error {
		defer close(shown)
		for s := range status {
			rec.add(s, step)
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
	_, solveErr := e.c.Solve(ctx, def, opt, status)
	eg.Wait()
	lw.Flush()
	if solveErr != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if rec.failed {
			return false, fmt.Errorf("%s build of app %s failed in builder image on buildkitd at %s:\n%s", app.Language, app.Name, e.s.Host, rec.tail())
		}
		return false, fmt.Errorf("compile %s on buildkitd at %s: %s", app.Name, e.s.Host, shortErr(solveErr))
	}
	return rec.cached, nil
}

// cacheOptions turns the Unikfile's cache specs into BuildKit's, making a
// local cache's folder (pathKey) absolute against the project.
func (e *Executor) cacheOptions(specs []lang.CacheSpec, pathKey string) ([]client.CacheOptionsEntry, error) {
	var out []client.CacheOptionsEntry
	for _, s := range specs {
		attrs := map[string]string{}
		for k, v := range s.Attrs {
			attrs[k] = v
		}
		if s.Type == "local" && attrs[pathKey] != "" && !filepath.IsAbs(attrs[pathKey]) {
			attrs[pathKey] = filepath.Join(e.s.ProjectDir, attrs[pathKey])
		}
		if s.Type == "local" && pathKey == "src" {
			// A local cache that does not exist yet is an empty cache.
			if _, err := os.Stat(filepath.Join(attrs[pathKey], "index.json")); errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
		out = append(out, client.CacheOptionsEntry{Type: s.Type, Attrs: attrs})
	}
	return out, nil
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

// stepRecord follows the compile step through the solve's status stream.
type stepRecord struct {
	vertices map[string]bool // digests of the compile step's vertices
	cached   bool
	failed   bool
	log      []byte
}

const maxLog = 16 << 10

func (r *stepRecord) add(s *client.SolveStatus, step string) {
	if r.vertices == nil {
		r.vertices = map[string]bool{}
	}
	for _, v := range s.Vertexes {
		if v.Name != step {
			continue
		}
		r.vertices[v.Digest.String()] = true
		if v.Cached {
			r.cached = true
		}
		if v.Error != "" {
			r.failed = true
		}
	}
	for _, l := range s.Logs {
		if r.vertices[l.Vertex.String()] {
			r.log = append(r.log, l.Data...)
			if len(r.log) > maxLog {
				r.log = r.log[len(r.log)-maxLog:]
			}
		}
	}
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

// Supports reports whether BuildKit has a builder for language.
func (e *Executor) Supports(language string) bool { return Supports(language) }

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

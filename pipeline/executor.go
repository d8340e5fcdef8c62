package pipeline

import (
	"context"
	"errors"
	"os"
	"sync"

	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/compile/buildkit"
)

// executorChoice is the compile executor of one Unikfile (its build block,
// --executor and UNIKFILE_BUILDKIT_HOST), chosen when its first compile
// node runs (buildkitd is asked once) and shared by its compile nodes:
// their solves run at once on one client.
type executorChoice struct {
	mu       sync.Mutex
	done     bool
	settings buildkit.Settings
	ex       compile.Executor
	err      error
}

// executors holds one choice per loaded Unikfile. It is safe for
// concurrent use: a long-lived Env (watch) builds graphs from several
// goroutines, and a reloaded Unikfile is a new Project and chooses again.
type executors struct {
	mu sync.Mutex
	m  map[*lang.Project]*executorChoice
}

func (env *Env) choiceFor(p *lang.Project) *executorChoice {
	env.executors.mu.Lock()
	defer env.executors.mu.Unlock()
	if env.executors.m == nil {
		env.executors.m = map[*lang.Project]*executorChoice{}
	}
	ch := env.executors.m[p]
	if ch == nil {
		ch = &executorChoice{}
		env.executors.m[p] = ch
	}
	return ch
}

// get returns the executor, choosing it on first use. An error is kept (so
// the other apps of a run fail at once) unless it was a cancellation, which
// the next compile retries.
func (ch *executorChoice) get(ctx context.Context, p *lang.Project, env *Env) (compile.Executor, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.done {
		return ch.ex, ch.err
	}
	environ := env.Environ
	if environ == nil {
		environ = os.Environ()
	}
	ch.settings = buildkit.SettingsFor(p, env.Executor, environ)
	bk, note, err := buildkit.Select(ctx, ch.settings)
	if err != nil && (errors.Is(err, context.Canceled) || ctx.Err() != nil) {
		return nil, err
	}
	if note != "" {
		graph.Progress(ctx, "%s", note)
	}
	ch.ex, ch.err, ch.done = compile.Local{}, err, true
	if bk != nil {
		ch.ex = bk
	}
	return ch.ex, ch.err
}

// compileApp compiles a with the executor the Unikfile, --executor and
// UNIKFILE_BUILDKIT_HOST select. Under auto (or an executor implied by
// UNIKFILE_BUILDKIT_HOST), an app that executor cannot compile (its
// language, or its base) compiles locally and says so.
func (r *planner) compileApp(ctx context.Context, p *lang.Project, a *lang.App) (*compile.Result, error) {
	ch := r.env.choiceFor(p)
	ex, err := ch.get(ctx, p, r.env)
	if err != nil {
		return nil, err
	}
	if !ex.Supports(a) && (ch.settings.Executor == buildkit.Auto || ch.settings.Implied) {
		graph.Progress(ctx, "BuildKit has no builder for language %s on base %s yet; compiling app %s with the local toolchain", a.Language, a.Base, a.Name)
		ex = compile.Local{}
	}
	env := r.env
	return ex.Compile(ctx, a, compile.Options{
		Cache: env.Cache, ToolVersion: env.ToolVersion, Log: env.Log, Digests: env.Digests, Memo: r.toolchains,
		Progress: func(line string) { graph.Progress(ctx, "%s", line) },
	})
}

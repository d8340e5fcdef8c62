package pipeline

import (
	"context"
	"os"
	"sync"

	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/compile/buildkit"
)

// executorChoice is the compile executor of one graph run, chosen when the
// first compile node runs (buildkitd is asked once) and shared by every
// compile node: their solves run at once on one client.
type executorChoice struct {
	once sync.Once
	bk   *buildkit.Executor // nil: the local executor
	note string
	err  error
}

func (env *Env) choice() *executorChoice {
	if env.executor == nil {
		env.executor = &executorChoice{}
	}
	return env.executor
}

// compileApp compiles a with the executor the Unikfile, --executor and
// UNIKFILE_BUILDKIT_HOST select.
func compileApp(ctx context.Context, p *lang.Project, a *lang.App, env *Env) (*compile.Result, error) {
	ch := env.executor
	ch.once.Do(func() {
		environ := env.Environ
		if environ == nil {
			environ = os.Environ()
		}
		ch.bk, ch.note, ch.err = buildkit.Select(ctx, buildkit.SettingsFor(p, env.Executor, environ))
		if ch.note != "" {
			graph.Progress(ctx, "%s", ch.note)
		}
	})
	if ch.err != nil {
		return nil, ch.err
	}
	if ch.bk == nil {
		return compile.Compile(ctx, a, compile.Options{Cache: env.Cache, ToolVersion: env.ToolVersion, Log: env.Log, Digests: env.Digests, Memo: &env.memo.toolchains})
	}
	out, err := ch.bk.Compile(ctx, a, buildkit.Options{
		Cache:       env.Cache,
		ToolVersion: env.ToolVersion,
		Digests:     env.Digests,
		Progress:    func(line string) { graph.Progress(ctx, "%s", line) },
	})
	if err != nil {
		return nil, err
	}
	if out.StepCached {
		graph.Progress(ctx, "compile step found in BuildKit's cache (%s): the compiler did not run", out.Builder)
	}
	return out.Result, nil
}

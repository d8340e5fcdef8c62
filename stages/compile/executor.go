package compile

import (
	"context"
	"sort"

	"github.com/unikfile/unikfile/lang"
)

// Executor runs compiles: Local with the host's toolchains, or one that
// compiles elsewhere (stages/compile/buildkit). The pipeline chooses one
// per Unikfile and calls it from every compile node of that Unikfile, so
// its methods must be safe for concurrent use.
type Executor interface {
	// Name is the executor's name in a build block's executor attribute.
	Name() string
	// Supports reports whether the executor compiles app (its language
	// for its base); under executor auto the pipeline compiles the other
	// apps locally.
	Supports(app *lang.App) bool
	// Compile builds app into a bundle in opts.Cache, or returns the
	// cached one when nothing it depends on changed.
	Compile(ctx context.Context, app *lang.App, opts Options) (*Result, error)
}

// Local compiles with the host's toolchains (the first in PATH).
type Local struct{}

var _ Executor = Local{}

// LocalName is the local executor's name.
const LocalName = "local"

// Name is "local".
func (Local) Name() string { return LocalName }

// Supports reports whether a language of the table is app's language.
func (Local) Supports(app *lang.App) bool { _, ok := languages[app.Language]; return ok }

// Compile is Compile.
func (Local) Compile(ctx context.Context, app *lang.App, opts Options) (*Result, error) {
	return Compile(ctx, app, opts)
}

// Languages are the names of the languages of the table, sorted.
func Languages() []string {
	out := make([]string, 0, len(languages))
	for n := range languages {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

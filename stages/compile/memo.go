package compile

import (
	"context"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/memo"
	"github.com/unikfile/unikfile/internal/stamp"
	"github.com/unikfile/unikfile/lang"
)

// scoper is implemented by languages whose toolchain identity is the same
// for every app with the same scope string, so that one run asks the
// toolchain once per scope instead of once per app.
type scoper interface {
	// ToolchainScope returns what, besides the process environment,
	// decides Toolchain's answer for app; ok is false when it cannot
	// tell (Toolchain is then asked for this app).
	ToolchainScope(app *lang.App) (scope string, ok bool)
}

// toolchainInputser is implemented by languages whose Toolchain answer,
// for a given scope, is decided by the environment the toolchain runs
// with and the metadata of a few files (its binary, its settings file):
// then the answer is kept across runs (cache.Facts) and a rebuild does not
// start the toolchain to ask it again. ok is false when the answer
// depends on more (a C compiler it links with, say).
type toolchainInputser interface {
	ToolchainInputs(app *lang.App) (files, environ []string, ok bool)
}

// Memo remembers toolchain identities for one run (one command): pass the
// same Memo in every Options of the run. The zero value is ready to use.
type Memo struct {
	g memo.Group[string]
}

// toolchain returns l.Toolchain(app), asked once per scope; a failure (a
// cancelled context, say) is not remembered.
// With store, an answer whose inputs did not change is also taken from
// (and kept in) the store's Facts.
func (m *Memo) toolchain(ctx context.Context, name string, l Language, app *lang.App, store *cache.Store) (string, error) {
	s, isScoper := l.(scoper)
	if m == nil || !isScoper {
		return l.Toolchain(ctx, app)
	}
	scope, ok := s.ToolchainScope(app)
	if !ok {
		return l.Toolchain(ctx, app)
	}
	return m.g.Do(name+"\x00"+scope, func() (string, error) {
		ti, ok := l.(toolchainInputser)
		if !ok || store == nil {
			return l.Toolchain(ctx, app)
		}
		files, environ, ok := ti.ToolchainInputs(app)
		if !ok {
			return l.Toolchain(ctx, app)
		}
		q := "toolchain " + name + "\n" + scope + "\n" + strings.Join(stamp.Environ(environ), "\n")
		return store.Facts().Get(q, files, func() (string, error) { return l.Toolchain(ctx, app) })
	})
}

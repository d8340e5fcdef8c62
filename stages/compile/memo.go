package compile

import (
	"context"

	"github.com/unikfile/unikfile/internal/memo"
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

// Memo remembers toolchain identities for one run (one command): pass the
// same Memo in every Options of the run. The zero value is ready to use.
type Memo struct {
	g memo.Group[string]
}

// toolchain returns l.Toolchain(app), asked once per scope; a failure (a
// cancelled context, say) is not remembered.
func (m *Memo) toolchain(ctx context.Context, name string, l Language, app *lang.App) (string, error) {
	s, isScoper := l.(scoper)
	if m == nil || !isScoper {
		return l.Toolchain(ctx, app)
	}
	scope, ok := s.ToolchainScope(app)
	if !ok {
		return l.Toolchain(ctx, app)
	}
	return m.g.Do(name+"\x00"+scope, func() (string, error) { return l.Toolchain(ctx, app) })
}

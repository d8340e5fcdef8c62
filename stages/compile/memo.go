package compile

import (
	"context"
	"sync"

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
	mu sync.Mutex
	m  map[string]*toolchainResult
}

type toolchainResult struct {
	once sync.Once
	tc   string
	err  error
}

// toolchain returns l.Toolchain(app), asked once per scope.
func (m *Memo) toolchain(ctx context.Context, name string, l Language, app *lang.App) (string, error) {
	s, isScoper := l.(scoper)
	if m == nil || !isScoper {
		return l.Toolchain(ctx, app)
	}
	scope, ok := s.ToolchainScope(app)
	if !ok {
		return l.Toolchain(ctx, app)
	}
	key := name + "\x00" + scope
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]*toolchainResult{}
	}
	r, have := m.m[key]
	if !have {
		r = &toolchainResult{}
		m.m[key] = r
	}
	m.mu.Unlock()
	r.once.Do(func() { r.tc, r.err = l.Toolchain(ctx, app) })
	if r.err != nil {
		// A failure (a cancelled context, say) is not remembered.
		m.mu.Lock()
		if m.m[key] == r {
			delete(m.m, key)
		}
		m.mu.Unlock()
	}
	return r.tc, r.err
}

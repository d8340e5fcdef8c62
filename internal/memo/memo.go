// Package memo computes a value once per key for every caller of one run
// (a resolved kernel, a toolchain's identity), however many goroutines ask
// at once. A failure is handed to the callers that waited for it and then
// forgotten, so that a later caller (after a cancellation, say) tries
// again. It knows nothing about what it holds.
package memo

import "sync"

// Group memoizes values of type V by key. The zero value is ready to use;
// a Group must not be copied after first use.
type Group[V any] struct {
	mu sync.Mutex
	m  map[string]*entry[V]
}

type entry[V any] struct {
	once sync.Once
	v    V
	err  error
}

// Do returns f's result for key, calling f only once while it succeeds.
func (g *Group[V]) Do(key string, f func() (V, error)) (V, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*entry[V]{}
	}
	e, ok := g.m[key]
	if !ok {
		e = &entry[V]{}
		g.m[key] = e
	}
	g.mu.Unlock()
	e.once.Do(func() { e.v, e.err = f() })
	if e.err != nil {
		g.mu.Lock()
		if g.m[key] == e {
			delete(g.m, key)
		}
		g.mu.Unlock()
	}
	return e.v, e.err
}

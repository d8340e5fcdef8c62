package devloop

import (
	"bytes"
	"io"
	"sync"
)

// prefixer puts the console lines of several apps onto one writer, whole
// lines at a time, each prefixed with its app's name ("hello | line").
type prefixer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixer) writer(app string) *appWriter { return &appWriter{p: p, app: app} }

type appWriter struct {
	p       *prefixer
	app     string
	partial []byte
}

func (a *appWriter) Write(b []byte) (int, error) {
	a.partial = append(a.partial, b...)
	for {
		i := bytes.IndexByte(a.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		a.line(a.partial[:i+1])
		a.partial = a.partial[i+1:]
	}
}

// flush writes an unterminated last line.
func (a *appWriter) flush() {
	if len(a.partial) > 0 {
		a.line(append(a.partial, '\n'))
		a.partial = nil
	}
}

func (a *appWriter) line(l []byte) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	_, _ = io.WriteString(a.p.w, a.app+" | ")
	_, _ = a.p.w.Write(l)
}

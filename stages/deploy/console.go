package deploy

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// consoleMux puts the console lines of a target's apps onto one writer: whole
// lines only, one at a time, each prefixed with its app's name when the
// target has several apps ("api | listening on :8080").
type consoleMux struct {
	mu    sync.Mutex
	w     io.Writer
	width int // of the longest app name; 0 means no prefix
}

func newConsoleMux(w io.Writer, apps []string) *consoleMux {
	m := &consoleMux{w: w}
	if len(apps) > 1 {
		for _, a := range apps {
			m.width = max(m.width, len(a))
		}
	}
	return m
}

// writer returns the writer for one app's console.
func (m *consoleMux) writer(app string) *appConsole {
	return &appConsole{m: m, app: app}
}

type appConsole struct {
	m       *consoleMux
	app     string
	partial []byte
}

func (a *appConsole) Write(p []byte) (int, error) {
	a.partial = append(a.partial, p...)
	for {
		i := bytes.IndexByte(a.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := a.m.line(a.app, a.partial[:i+1]); err != nil {
			return 0, err
		}
		a.partial = a.partial[i+1:]
	}
}

// flush writes an unterminated last line.
func (a *appConsole) flush() {
	if len(a.partial) > 0 {
		_ = a.m.line(a.app, append(a.partial, '\n'))
		a.partial = nil
	}
}

func (m *consoleMux) line(app string, l []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.width > 0 {
		if _, err := fmt.Fprintf(m.w, "%-*s | ", m.width, app); err != nil {
			return err
		}
	}
	_, err := m.w.Write(l)
	return err
}

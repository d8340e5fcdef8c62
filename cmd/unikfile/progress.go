package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/unikfile/unikfile/graph"
)

// progress renders graph events: one plain line per event, and on a
// terminal also a status line naming what runs, redrawn as time passes.
type progress struct {
	w       io.Writer
	tty     bool
	mu      sync.Mutex
	running map[string]time.Time
	stop    chan struct{}
	done    chan struct{}
	status  bool // a status line is on screen
}

func newProgress(w io.Writer, tty bool) *progress {
	p := &progress{w: w, tty: tty, running: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	if tty {
		go p.tick()
	} else {
		close(p.done)
	}
	return p
}

func (p *progress) tick() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.drawStatus()
			p.mu.Unlock()
		}
	}
}

// Close removes the status line.
func (p *progress) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	p.clearStatus()
	p.mu.Unlock()
}

func (p *progress) clearStatus() {
	if p.status {
		fmt.Fprint(p.w, "\r\033[K")
		p.status = false
	}
}

func (p *progress) drawStatus() {
	p.clearStatus()
	if len(p.running) == 0 {
		return
	}
	names := make([]string, 0, len(p.running))
	for n := range p.running {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1fs", n, time.Since(p.running[n]).Seconds())
	}
	fmt.Fprintf(p.w, "\033[2m… %s\033[0m", strings.Join(parts, ", "))
	p.status = true
}

func (p *progress) color(code, s string) string {
	if !p.tty {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

// Event renders one graph event.
func (p *progress) Event(e graph.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearStatus()
	switch e.Kind {
	case graph.EventStarted:
		p.running[e.Node] = time.Now()
		if !p.tty {
			fmt.Fprintf(p.w, "%s: started\n", e.Node)
		}
	case graph.EventProgress:
		fmt.Fprintf(p.w, "%s: %s\n", e.Node, e.Message)
	case graph.EventFinished:
		delete(p.running, e.Node)
		switch e.Status {
		case graph.StatusCached:
			fmt.Fprintf(p.w, "%s: %s\n", e.Node, p.color("36", "up to date"))
		case graph.StatusBuilt:
			fmt.Fprintf(p.w, "%s: %s in %s\n", e.Node, p.color("32", "done"), round(e.Elapsed))
		case graph.StatusFailed:
			fmt.Fprintf(p.w, "%s: %s after %s\n", e.Node, p.color("31", "failed"), round(e.Elapsed))
		case graph.StatusSkipped:
			fmt.Fprintf(p.w, "%s: %s\n", e.Node, p.color("33", "skipped"))
		}
	}
	if p.tty {
		p.drawStatus()
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Millisecond)
	}
}

package graph

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Node is one unit of work.
type Node struct {
	// ID names the node uniquely, e.g. "compile hello"; it is what the
	// progress output shows.
	ID   string
	Deps []string
	// Run does the work. deps holds the outputs of Deps by ID. cached
	// reports that the result came from the cache and nothing was redone.
	Run func(ctx context.Context, deps map[string]any) (out any, cached bool, err error)
}

// Graph is a set of nodes. Adding a node whose ID is already present is a
// no-op: that is how shared work (one compile serving many targets) is done
// once.
type Graph struct {
	nodes map[string]*Node
	order []string
}

// New returns an empty graph.
func New() *Graph { return &Graph{nodes: map[string]*Node{}} }

// Add adds n unless a node with its ID exists; it returns the node in the graph.
func (g *Graph) Add(n *Node) *Node {
	if old, ok := g.nodes[n.ID]; ok {
		return old
	}
	g.nodes[n.ID] = n
	g.order = append(g.order, n.ID)
	return n
}

// Nodes returns the nodes in insertion order.
func (g *Graph) Nodes() []*Node {
	out := make([]*Node, 0, len(g.order))
	for _, id := range g.order {
		out = append(out, g.nodes[id])
	}
	return out
}

// Status is a node's final state.
type Status string

// Node states, as the summary prints them.
const (
	StatusBuilt   Status = "done"
	StatusCached  Status = "cached"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped" // a dependency failed or the run was cancelled
)

// Result is the outcome of one node.
type Result struct {
	ID       string
	Status   Status
	Output   any
	Err      error
	Duration time.Duration
}

// EventKind says what happened to a node.
type EventKind int

// Event kinds.
const (
	EventStarted EventKind = iota
	EventProgress
	EventFinished
)

// Event is one step of a run.
type Event struct {
	Kind    EventKind
	Node    string
	Status  Status // for EventFinished
	Message string // for EventProgress
	Err     error
	Elapsed time.Duration
}

// Options tune a run.
type Options struct {
	// Jobs bounds how many nodes run at once; 0 means the number of CPUs.
	Jobs int
	// KeepGoing runs every node whose dependencies succeeded even after a
	// failure; otherwise the first failure cancels the rest.
	KeepGoing bool
	// OnEvent receives events; it is called from one goroutine at a time.
	OnEvent func(Event)
}

type progressKey struct{}

// Progress reports a one-line message from inside a node's Run.
func Progress(ctx context.Context, format string, args ...any) {
	if f, ok := ctx.Value(progressKey{}).(func(string)); ok {
		f(fmt.Sprintf(format, args...))
	}
}

// Validate checks that every dependency exists and that there is no cycle.
func (g *Graph) Validate() error {
	for _, id := range g.order {
		for _, d := range g.nodes[id].Deps {
			if _, ok := g.nodes[d]; !ok {
				return fmt.Errorf("graph: %q depends on unknown node %q", id, d)
			}
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(id string) error
	visit = func(id string) error {
		color[id] = grey
		stack = append(stack, id)
		for _, d := range g.nodes[id].Deps {
			switch color[d] {
			case grey:
				i := len(stack) - 1
				for stack[i] != d {
					i--
				}
				return fmt.Errorf("graph: cycle: %s -> %s", strings.Join(stack[i:], " -> "), d)
			case white:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return nil
	}
	for _, id := range g.order {
		if color[id] == white {
			if err := visit(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// Run executes the graph. It returns every node's result and an error that
// joins the failures (nil when all succeeded).
func (g *Graph) Run(ctx context.Context, opts Options) (map[string]*Result, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex // guards results, pending, and OnEvent calls
	emit := func(e Event) {
		if opts.OnEvent != nil {
			opts.OnEvent(e)
		}
	}
	results := map[string]*Result{}
	pending := map[string]int{}
	dependents := map[string][]string{}
	for _, id := range g.order {
		pending[id] = len(g.nodes[id].Deps)
		for _, d := range g.nodes[id].Deps {
			dependents[d] = append(dependents[d], id)
		}
	}
	ready := make(chan string, len(g.order))
	for _, id := range g.order {
		if pending[id] == 0 {
			ready <- id
		}
	}
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	remaining := len(g.order)
	done := make(chan struct{})
	var once sync.Once
	closeDone := func() { once.Do(func() { close(done) }) }
	if remaining == 0 {
		closeDone()
	}

	// finish records a result and releases dependents; callers hold mu.
	var finish func(r *Result)
	finish = func(r *Result) {
		results[r.ID] = r
		emit(Event{Kind: EventFinished, Node: r.ID, Status: r.Status, Err: r.Err, Elapsed: r.Duration})
		remaining--
		for _, dep := range dependents[r.ID] {
			if _, already := results[dep]; already {
				continue
			}
			if r.Status == StatusFailed || r.Status == StatusSkipped {
				finish(&Result{ID: dep, Status: StatusSkipped, Err: fmt.Errorf("skipped: %s did not complete", r.ID)})
				continue
			}
			pending[dep]--
			if pending[dep] == 0 {
				ready <- dep
			}
		}
		if remaining == 0 {
			closeDone()
		}
	}

	for {
		select {
		case <-done:
			wg.Wait()
			err := joinErrors(g.order, results)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			return results, err
		case id := <-ready:
			n := g.nodes[id]
			acquired := false
			select {
			case sem <- struct{}{}:
				acquired = true
			case <-ctx.Done():
			}
			mu.Lock()
			if ctx.Err() != nil {
				finish(&Result{ID: id, Status: StatusSkipped, Err: ctx.Err()})
				mu.Unlock()
				if acquired {
					<-sem
				}
				continue
			}
			deps := make(map[string]any, len(n.Deps))
			for _, d := range n.Deps {
				deps[d] = results[d].Output
			}
			emit(Event{Kind: EventStarted, Node: id})
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				start := time.Now()
				nctx := context.WithValue(ctx, progressKey{}, func(msg string) {
					mu.Lock()
					emit(Event{Kind: EventProgress, Node: id, Message: msg, Elapsed: time.Since(start)})
					mu.Unlock()
				})
				out, cached, err := safeRun(nctx, n, deps)
				r := &Result{ID: id, Output: out, Err: err, Duration: time.Since(start)}
				switch {
				case err != nil && ctx.Err() != nil:
					// Cancelled: by another node's failure or by the
					// caller. The cause is reported elsewhere.
					r.Status = StatusSkipped
				case err != nil:
					r.Status = StatusFailed
				case cached:
					r.Status = StatusCached
				default:
					r.Status = StatusBuilt
				}
				mu.Lock()
				finish(r)
				mu.Unlock()
				if err != nil && !opts.KeepGoing {
					cancel()
				}
			}()
		}
	}
}

func safeRun(ctx context.Context, n *Node, deps map[string]any) (out any, cached bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Node: n.ID, Value: p, Stack: debug.Stack()}
		}
	}()
	return n.Run(ctx, deps)
}

// PanicError is a node that panicked: a bug, not bad input.
type PanicError struct {
	Node  string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error in %s: %v (please report it with this stack)\n%s", e.Node, e.Value, e.Stack)
}

// NodeError is a failed node's error, naming the node.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return e.Node + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

func joinErrors(order []string, results map[string]*Result) error {
	var errs []error
	for _, id := range order {
		if r := results[id]; r != nil && r.Status == StatusFailed {
			errs = append(errs, &NodeError{Node: id, Err: r.Err})
		}
	}
	return errors.Join(errs...)
}

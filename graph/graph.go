package graph

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
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
	// Likely says the node's inputs have probably changed since the last
	// run, so that it is likely to do real work: it and the nodes that
	// depend on it start before other ready nodes (see readyQueue). It
	// changes the order only, never what runs.
	Likely bool
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

package graph

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func node(id string, deps []string, f func(ctx context.Context) error) *Node {
	return &Node{ID: id, Deps: deps, Run: func(ctx context.Context, in map[string]any) (any, bool, error) {
		if f != nil {
			if err := f(ctx); err != nil {
				return nil, false, err
			}
		}
		return id, false, nil
	}}
}

func TestOrderAndDedupe(t *testing.T) {
	g := New()
	var mu sync.Mutex
	var order []string
	rec := func(id string) func(context.Context) error {
		return func(context.Context) error { mu.Lock(); order = append(order, id); mu.Unlock(); return nil }
	}
	g.Add(node("compile", nil, rec("compile")))
	g.Add(node("compile", nil, rec("compile-again"))) // shared work: ignored
	g.Add(node("package", []string{"compile"}, rec("package")))
	g.Add(node("deploy a", []string{"package"}, rec("deploy a")))
	g.Add(node("deploy b", []string{"package"}, rec("deploy b")))
	res, err := g.Run(context.Background(), Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 4 || order[0] != "compile" || order[1] != "package" {
		t.Fatalf("order = %v", order)
	}
	if res["deploy a"].Status != StatusBuilt {
		t.Fatalf("status = %v", res["deploy a"].Status)
	}
}

func TestBoundedParallelism(t *testing.T) {
	g := New()
	var running, peak atomic.Int32
	for i := 0; i < 8; i++ {
		g.Add(node(string(rune('a'+i)), nil, func(context.Context) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
			running.Add(-1)
			return nil
		}))
	}
	if _, err := g.Run(context.Background(), Options{Jobs: 3}); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak parallelism = %d, want 2..3 with -j3", p)
	}
}

func TestFailureSkipsDependentsAndCancels(t *testing.T) {
	g := New()
	boom := errors.New("boom")
	slowSawCancel := make(chan bool, 1)
	slowStarted := make(chan struct{})
	// bad fails only once slow runs, so that the failure has something
	// running to cancel.
	g.Add(node("bad", nil, func(context.Context) error { <-slowStarted; return boom }))
	g.Add(node("after bad", []string{"bad"}, nil))
	g.Add(node("slow", nil, func(ctx context.Context) error {
		close(slowStarted)
		select {
		case <-ctx.Done():
			slowSawCancel <- true
			return ctx.Err()
		case <-time.After(5 * time.Second):
			slowSawCancel <- false
			return nil
		}
	}))
	res, err := g.Run(context.Background(), Options{Jobs: 2})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "bad: boom") {
		t.Fatalf("err = %v", err)
	}
	if res["after bad"].Status != StatusSkipped {
		t.Fatalf("dependent of a failure: %v", res["after bad"].Status)
	}
	if !<-slowSawCancel {
		t.Fatal("a failure did not cancel running nodes")
	}
	if res["slow"].Status != StatusSkipped || strings.Contains(err.Error(), "slow") {
		t.Fatalf("a node cancelled by another's failure must be skipped, not failed: %v, %v", res["slow"].Status, err)
	}
}

func TestKeepGoing(t *testing.T) {
	g := New()
	g.Add(node("bad", nil, func(context.Context) error { return errors.New("boom") }))
	g.Add(node("good", nil, func(context.Context) error { time.Sleep(20 * time.Millisecond); return nil }))
	res, err := g.Run(context.Background(), Options{Jobs: 1, KeepGoing: true})
	if err == nil || res["good"].Status != StatusBuilt {
		t.Fatalf("err=%v good=%v", err, res["good"].Status)
	}
}

func TestCycleAndUnknownDep(t *testing.T) {
	g := New()
	g.Add(node("a", []string{"b"}, nil))
	g.Add(node("b", []string{"a"}, nil))
	if _, err := g.Run(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("err = %v", err)
	}
	g = New()
	g.Add(node("a", []string{"nope"}, nil))
	if _, err := g.Run(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelledRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := New()
	g.Add(node("a", nil, func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() }))
	g.Add(node("b", []string{"a"}, nil))
	res, err := g.Run(ctx, Options{})
	if !errors.Is(err, context.Canceled) || res["b"].Status != StatusSkipped {
		t.Fatalf("err=%v b=%v", err, res["b"].Status)
	}
}

func TestProgressAndPanic(t *testing.T) {
	g := New()
	var msgs []string
	g.Add(&Node{ID: "p", Run: func(ctx context.Context, _ map[string]any) (any, bool, error) {
		Progress(ctx, "step %d", 1)
		panic("bug")
	}})
	_, err := g.Run(context.Background(), Options{OnEvent: func(e Event) {
		if e.Kind == EventProgress {
			msgs = append(msgs, e.Message)
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("err = %v", err)
	}
	if len(msgs) != 1 || msgs[0] != "step 1" {
		t.Fatalf("progress = %v", msgs)
	}
}

package graph

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder keeps a run's events in the order OnEvent saw them.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) on(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// peak is the most nodes running at once, from the order of the start and
// finish events: no clock is read.
func (r *recorder) peak() int {
	n, p := 0, 0
	running := map[string]bool{}
	for _, e := range r.events {
		switch e.Kind {
		case EventStarted:
			running[e.Node] = true
			n++
			p = max(p, n)
		case EventFinished:
			if running[e.Node] { // a node skipped before it ran never started
				delete(running, e.Node)
				n--
			}
		}
	}
	return p
}

func (r *recorder) started() []string {
	var ids []string
	for _, e := range r.events {
		if e.Kind == EventStarted {
			ids = append(ids, e.Node)
		}
	}
	return ids
}

// TestIndependentNodesRunConcurrently runs N independent nodes at -jN and
// checks, from the executor's own start and finish events, that all N ran
// at the same time: every node started before any finished, and their
// [Start, End] intervals share a moment. Each node waits (up to a bound
// that only limits how long a failing run takes) until all have started,
// so a serialising executor shows as a finish before the last start.
func TestIndependentNodesRunConcurrently(t *testing.T) {
	for _, n := range []int{2, 4, 16} {
		t.Run(fmt.Sprintf("j%d", n), func(t *testing.T) {
			bound, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(n)
			all := make(chan struct{})
			go func() { wg.Wait(); close(all) }()
			g := New()
			for i := 0; i < n; i++ {
				g.Add(node(fmt.Sprintf("n%02d", i), nil, func(ctx context.Context) error {
					wg.Done()
					select {
					case <-all:
					case <-bound.Done():
					}
					return nil
				}))
			}
			rec := &recorder{}
			res, err := g.Run(context.Background(), Options{Jobs: n, OnEvent: rec.on})
			if err != nil {
				t.Fatal(err)
			}
			if p := rec.peak(); p != n {
				t.Fatalf("at most %d of %d independent nodes ran at once with -j%d; events: %v", p, n, n, rec.started())
			}
			var lastStart, firstEnd time.Time
			for _, r := range res {
				if r.Start.After(lastStart) {
					lastStart = r.Start
				}
				if firstEnd.IsZero() || r.End.Before(firstEnd) {
					firstEnd = r.End
				}
			}
			if !lastStart.Before(firstEnd) {
				t.Fatalf("the nodes' intervals do not overlap: last start %v, first end %v", lastStart, firstEnd)
			}
		})
	}
}

// TestJobsBoundsOverlap: with more ready nodes than slots, exactly -j of
// them overlap, never more.
func TestJobsBoundsOverlap(t *testing.T) {
	const jobs = 3
	bound, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := New()
	var mu sync.Mutex
	running := 0
	full := make(chan struct{})
	for i := 0; i < 9; i++ {
		g.Add(node(fmt.Sprintf("n%d", i), nil, func(context.Context) error {
			mu.Lock()
			running++
			if running == jobs {
				select {
				case <-full:
				default:
					close(full)
				}
			}
			mu.Unlock()
			select { // the first wave waits until it is complete
			case <-full:
			case <-bound.Done():
			}
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}))
	}
	rec := &recorder{}
	if _, err := g.Run(context.Background(), Options{Jobs: jobs, OnEvent: rec.on}); err != nil {
		t.Fatal(err)
	}
	if p := rec.peak(); p != jobs {
		t.Fatalf("peak overlap %d, want %d with -j%d", p, jobs, jobs)
	}
}

// appGraph is a tree of apps as pipeline plans it: each app's compile, and
// its package, which needs the compile and the one shared init.
func appGraph(apps int, work func(id string)) *Graph {
	g := New()
	for i := 0; i < apps; i++ {
		c, p := fmt.Sprintf("compile %d", i), fmt.Sprintf("package %d", i)
		f := func(id string) func(context.Context) error {
			return func(context.Context) error { work(id); return nil }
		}
		g.Add(node("init", nil, f("init")))
		g.Add(node(c, nil, f(c)))
		g.Add(node(p, []string{c, "init"}, f(p)))
	}
	return g
}

// TestDeepestReadyNodeFirst: a node whose inputs are ready starts before
// one that begins a new chain, so each app's package follows its compile
// (as make does), instead of every compile first.
func TestDeepestReadyNodeFirst(t *testing.T) {
	rec := &recorder{}
	if _, err := appGraph(3, func(string) {}).Run(context.Background(), Options{Jobs: 1, OnEvent: rec.on}); err != nil {
		t.Fatal(err)
	}
	want := "init, compile 0, package 0, compile 1, package 1, compile 2, package 2"
	if got := strings.Join(rec.started(), ", "); got != want {
		t.Fatalf("order at -j1:\n got %s\nwant %s", got, want)
	}
}

// TestLikelyNodeFirst: a node marked Likely (its inputs changed) starts
// before its peers, and what depends on it follows it as soon as its
// other inputs are done; the rest keep their order.
func TestLikelyNodeFirst(t *testing.T) {
	rec := &recorder{}
	g := appGraph(3, func(string) {})
	g.nodes["compile 2"].Likely = true
	if _, err := g.Run(context.Background(), Options{Jobs: 1, OnEvent: rec.on}); err != nil {
		t.Fatal(err)
	}
	want := "compile 2, init, package 2, compile 0, package 0, compile 1, package 1"
	if got := strings.Join(rec.started(), ", "); got != want {
		t.Fatalf("order at -j1 with compile 2 likely:\n got %s\nwant %s", got, want)
	}
}

// TestPackagesOverlapCompiles: at -j2, packages start while compiles are
// still to start; the executor does not run every compile first.
func TestPackagesOverlapCompiles(t *testing.T) {
	rec := &recorder{}
	if _, err := appGraph(8, func(string) { time.Sleep(time.Millisecond) }).Run(context.Background(), Options{Jobs: 2, OnEvent: rec.on}); err != nil {
		t.Fatal(err)
	}
	order := rec.started()
	firstPackage, lastCompile := -1, -1
	for i, id := range order {
		if strings.HasPrefix(id, "package") && firstPackage < 0 {
			firstPackage = i
		}
		if strings.HasPrefix(id, "compile") {
			lastCompile = i
		}
	}
	if firstPackage > lastCompile {
		t.Fatalf("every compile started before the first package: %v", order)
	}
}

// TestTimings: Ready is when the last dependency ended (the run's start
// for a root), Queue is Start - Ready, Duration is End - Start, and a
// node that waited for a slot shows it in Queue.
func TestTimings(t *testing.T) {
	release := make(chan struct{})
	g := New()
	g.Add(node("first", nil, func(context.Context) error { <-release; return nil }))
	g.Add(node("second", nil, nil)) // waits for first's slot at -j1
	g.Add(node("after", []string{"first", "second"}, nil))
	rec := &recorder{}
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	res, err := g.Run(context.Background(), Options{Jobs: 1, OnEvent: rec.on})
	if err != nil {
		t.Fatal(err)
	}
	first, second, after := res["first"], res["second"], res["after"]
	if !first.Ready.Equal(second.Ready) || !first.Ready.Equal(RunStart(res)) {
		t.Fatalf("roots are ready when the run starts: %v %v %v", first.Ready, second.Ready, RunStart(res))
	}
	if second.Start.Before(first.End) {
		t.Fatal("at -j1 second started before first ended")
	}
	for _, r := range []*Result{first, second, after} {
		if r.Queue != r.Start.Sub(r.Ready) || r.Duration != r.End.Sub(r.Start) || r.Queue < 0 {
			t.Fatalf("%s: queue %v, start-ready %v; duration %v, end-start %v", r.ID, r.Queue, r.Start.Sub(r.Ready), r.Duration, r.End.Sub(r.Start))
		}
	}
	if second.Queue < first.Duration {
		t.Fatalf("second waited %v for the slot first held %v", second.Queue, first.Duration)
	}
	if !after.Ready.Equal(second.End) {
		t.Fatalf("after was ready at %v, its last dependency ended at %v", after.Ready, second.End)
	}
	var startedQueue time.Duration
	for _, e := range rec.events {
		if e.Kind == EventStarted && e.Node == "second" {
			startedQueue = e.Queue
		}
	}
	if startedQueue != second.Queue {
		t.Fatalf("EventStarted says queue %v, the result %v", startedQueue, second.Queue)
	}
}

// TestFailureStartsNothingQueued: after a failure (without -k), nodes that
// were waiting for a slot are skipped without starting.
func TestFailureStartsNothingQueued(t *testing.T) {
	g := New()
	g.Add(node("bad", nil, func(context.Context) error { return errors.New("boom") }))
	for i := 0; i < 5; i++ {
		g.Add(node(fmt.Sprintf("later %d", i), nil, nil))
	}
	rec := &recorder{}
	res, err := g.Run(context.Background(), Options{Jobs: 1, OnEvent: rec.on})
	if err == nil {
		t.Fatal("no error")
	}
	if s := rec.started(); len(s) != 1 || s[0] != "bad" {
		t.Fatalf("started after the failure: %v", s)
	}
	var skipped []string
	for id, r := range res {
		if r.Status == StatusSkipped {
			skipped = append(skipped, id)
		}
	}
	sort.Strings(skipped)
	if len(skipped) != 5 {
		t.Fatalf("skipped = %v", skipped)
	}
}

// TestCancelWhileQueued: cancelling a run whose nodes wait for a slot held
// by a node that ignores cancellation for a while skips them at once.
func TestCancelWhileQueued(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	unblock := make(chan struct{})
	g := New()
	g.Add(node("stuck", nil, func(context.Context) error { cancel(); <-unblock; return nil }))
	g.Add(node("queued", nil, nil))
	skipped := make(chan struct{})
	go func() {
		select {
		case <-skipped:
		case <-time.After(10 * time.Second):
		}
		close(unblock)
	}()
	rec := &recorder{}
	var once sync.Once
	res, err := g.Run(ctx, Options{Jobs: 1, OnEvent: func(e Event) {
		rec.on(e)
		if e.Kind == EventFinished && e.Node == "queued" {
			once.Do(func() { close(skipped) })
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if res["queued"].Status != StatusSkipped {
		t.Fatalf("queued: %v", res["queued"].Status)
	}
	if !res["queued"].End.Before(res["stuck"].End) {
		t.Fatal("the queued node was skipped only after the running one ended")
	}
}

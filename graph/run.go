package graph

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Run executes the graph. It returns every node's result and an error that
// joins the failures (nil when all succeeded).
//
// One lock guards the run's bookkeeping and is held only to record a
// result and start what became ready, never while a node works: nodes run
// on their own goroutines, up to Options.Jobs at once, and the next one
// starts the moment a slot frees.
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

	r := &run{g: g, opts: opts, ctx: ctx, cancel: cancel, jobs: jobs,
		results: map[string]*Result{}, index: map[string]int{}, dependents: map[string][]string{},
		pending: make([]int, len(g.order)), readyAt: make([]time.Time, len(g.order)),
		remaining: len(g.order), done: make(chan struct{})}
	for i, id := range g.order {
		r.index[id] = i
	}
	for i, id := range g.order {
		r.pending[i] = len(g.nodes[id].Deps)
		for _, d := range g.nodes[id].Deps {
			r.dependents[d] = append(r.dependents[d], id)
		}
	}
	r.queue.depth, r.queue.likely = g.depths(r.index)

	r.mu.Lock()
	start := time.Now()
	for i := range g.order {
		if r.pending[i] == 0 {
			r.readyAt[i] = start
			r.queue.push(i)
		}
	}
	if r.remaining == 0 {
		r.closed = true
		close(r.done)
	}
	r.dispatch()
	r.mu.Unlock()
	// A cancelled run skips what waits in the queue at once, even while
	// nothing runs.
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.dispatch()
		r.mu.Unlock()
	})
	defer stop()

	<-r.done
	r.wg.Wait()
	err := joinErrors(g.order, r.results)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return r.results, err
}

// run is the state of one Run.
type run struct {
	g      *Graph
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	jobs   int
	wg     sync.WaitGroup
	done   chan struct{} // closed when every node has a result

	mu         sync.Mutex // guards what follows, and OnEvent calls
	results    map[string]*Result
	index      map[string]int // position in g.order
	dependents map[string][]string
	pending    []int       // unfinished dependencies, by index
	readyAt    []time.Time // when the last dependency finished, by index
	queue      readyQueue
	running    int
	remaining  int
	closed     bool // done is closed
}

func (r *run) emit(e Event) {
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(e)
	}
}

// dispatch starts queued nodes while slots are free, or, once the run is
// cancelled, skips every queued node. Callers hold mu.
func (r *run) dispatch() {
	for r.queue.Len() > 0 {
		if err := r.ctx.Err(); err != nil {
			r.finish(&Result{ID: r.g.order[r.queue.pop()], Status: StatusSkipped, Err: err, End: time.Now()})
			continue
		}
		if r.running == r.jobs {
			return
		}
		r.start(r.queue.pop())
	}
}

// start runs node i on its own goroutine. Callers hold mu.
func (r *run) start(i int) {
	id := r.g.order[i]
	n := r.g.nodes[id]
	deps := make(map[string]any, len(n.Deps))
	for _, d := range n.Deps {
		deps[d] = r.results[d].Output
	}
	r.running++
	start := time.Now()
	r.emit(Event{Kind: EventStarted, Node: id, Time: start, Queue: start.Sub(r.readyAt[i])})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		nctx := context.WithValue(r.ctx, progressKey{}, func(msg string) {
			r.mu.Lock()
			now := time.Now()
			r.emit(Event{Kind: EventProgress, Node: id, Message: msg, Time: now, Elapsed: now.Sub(start)})
			r.mu.Unlock()
		})
		out, cached, err := safeRun(nctx, n, deps)
		end := time.Now()
		res := &Result{ID: id, Output: out, Err: err, Start: start, End: end, Duration: end.Sub(start)}
		switch {
		case err != nil && r.ctx.Err() != nil:
			// Cancelled: by another node's failure or by the caller.
			// The cause is reported elsewhere.
			res.Status = StatusSkipped
		case err != nil:
			res.Status = StatusFailed
		case cached:
			res.Status = StatusCached
		default:
			res.Status = StatusBuilt
		}
		if err != nil && !r.opts.KeepGoing {
			r.cancel() // nothing queued starts after a failure
		}
		r.mu.Lock()
		r.running--
		r.finish(res)
		r.dispatch()
		r.mu.Unlock()
	}()
}

// finish records a result, whose End is set, and queues the dependents it
// made ready or skips them when it did not complete. Callers hold mu.
func (r *run) finish(res *Result) {
	i := r.index[res.ID]
	if res.Start.IsZero() {
		res.Start = res.End // skipped before it ran
	}
	res.Ready = r.readyAt[i]
	if res.Ready.IsZero() || res.Ready.After(res.Start) {
		res.Ready = res.Start // never ready: a dependency did not complete
	}
	res.Queue = res.Start.Sub(res.Ready)
	r.results[res.ID] = res
	r.emit(Event{Kind: EventFinished, Node: res.ID, Status: res.Status, Err: res.Err, Time: res.End, Elapsed: res.Duration, Queue: res.Queue})
	r.remaining--
	for _, dep := range r.dependents[res.ID] {
		if _, already := r.results[dep]; already {
			continue
		}
		if res.Status == StatusFailed || res.Status == StatusSkipped {
			r.finish(&Result{ID: dep, Status: StatusSkipped, Err: fmt.Errorf("skipped: %s did not complete", res.ID), End: res.End})
			continue
		}
		j := r.index[dep]
		r.pending[j]--
		if r.pending[j] == 0 {
			r.readyAt[j] = res.End
			r.queue.push(j)
		}
	}
	if r.remaining == 0 && !r.closed {
		r.closed = true
		close(r.done)
	}
}

package graph

import "time"

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
	ID     string
	Status Status
	Output any
	Err    error
	// Duration is the node's wall time: from Start to End.
	Duration time.Duration
	// Ready is when the node could have started (its dependencies were
	// done, or the run began for a node without any); Start when it got a
	// job slot and began, End when it finished. A node skipped before it
	// ran has Start and End equal to when it was skipped.
	Ready, Start, End time.Time
	// Queue is how long the node waited for a job slot after it was
	// ready: Start - Ready. A build whose nodes queue long is bound by
	// -j; one whose nodes wait on dependencies is bound by the graph.
	Queue time.Duration
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
	// Time is when it happened.
	Time time.Time
	// Elapsed is the time since the node started (EventProgress,
	// EventFinished: the node's wall time).
	Elapsed time.Duration
	// Queue is how long the node waited for a job slot after its
	// dependencies were done (EventStarted, EventFinished).
	Queue time.Duration
}

// Options tune a run.
type Options struct {
	// Jobs bounds how many nodes run at once; 0 means the number of CPUs.
	// Of the nodes ready to run, the one with the longest chain of
	// dependencies below it starts first (see readyQueue).
	Jobs int
	// KeepGoing runs every node whose dependencies succeeded even after a
	// failure; otherwise the first failure cancels the rest.
	KeepGoing bool
	// OnEvent receives events; it is called from one goroutine at a time.
	OnEvent func(Event)
}

// RunStart is when the run that gave results began: the earliest Ready.
func RunStart(results map[string]*Result) time.Time {
	var t time.Time
	for _, r := range results {
		if !r.Ready.IsZero() && (t.IsZero() || r.Ready.Before(t)) {
			t = r.Ready
		}
	}
	return t
}

// StageTime is where the nodes of one stage spent a run: their work, their
// wait for a job slot, and the span from the first start to the last end.
type StageTime struct {
	Stage string
	Nodes int
	// Wall and Queue are sums over the stage's nodes that ran.
	Wall, Queue time.Duration
	// First is the first start, Last the last end, of those nodes.
	First, Last time.Time
}

// Stages groups the results of g's nodes by stageOf(node ID), in the
// order each stage first appears among g's nodes. Nodes skipped before
// they ran count in Nodes only.
func (g *Graph) Stages(results map[string]*Result, stageOf func(id string) string) []StageTime {
	var out []StageTime
	at := map[string]int{}
	for _, id := range g.order {
		s := stageOf(id)
		i, ok := at[s]
		if !ok {
			i = len(out)
			at[s] = i
			out = append(out, StageTime{Stage: s})
		}
		st := &out[i]
		st.Nodes++
		r := results[id]
		if r == nil || r.Start.IsZero() || (r.Status == StatusSkipped && r.Start.Equal(r.End)) {
			continue
		}
		st.Wall += r.Duration
		st.Queue += r.Queue
		if st.First.IsZero() || r.Start.Before(st.First) {
			st.First = r.Start
		}
		if r.End.After(st.Last) {
			st.Last = r.End
		}
	}
	return out
}

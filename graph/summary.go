package graph

import (
	"strings"
	"time"
)

// Summary is every node's outcome of a run, in the graph's order, with
// the counts of each outcome: what `--summary` prints.
type Summary struct {
	Nodes []SummaryNode `json:"nodes"`
	// Stages is set by the caller, which knows what a stage is
	// (SummarizeStages).
	Stages     []SummaryStage `json:"stages,omitempty"`
	Built      int            `json:"built"`
	Cached     int            `json:"cached"`
	Failed     int            `json:"failed"`
	Skipped    int            `json:"skipped"`
	DurationMS int64          `json:"duration_ms"`
}

// SummaryNode is one node's outcome.
type SummaryNode struct {
	ID         string `json:"id"`
	Status     string `json:"status"` // built | cached | failed | skipped
	DurationMS int64  `json:"duration_ms"`
	// QueueMS is the node's wait for a job slot after its dependencies
	// were done; StartMS when it started, from the start of the run.
	QueueMS int64  `json:"queue_ms"`
	StartMS int64  `json:"start_ms"`
	Error   string `json:"error,omitempty"` // its first line
}

// SummaryStage is a StageTime in milliseconds, its span from the start of
// the run.
type SummaryStage struct {
	Stage   string `json:"stage"`
	Nodes   int    `json:"nodes"`
	WallMS  int64  `json:"wall_ms"`
	QueueMS int64  `json:"queue_ms"`
	FirstMS int64  `json:"first_start_ms"`
	LastMS  int64  `json:"last_end_ms"`
}

// SummarizeStages is g.Stages of results as a summary shows them.
func SummarizeStages(g *Graph, results map[string]*Result, stageOf func(id string) string) []SummaryStage {
	start := RunStart(results)
	var out []SummaryStage
	for _, st := range g.Stages(results, stageOf) {
		ss := SummaryStage{Stage: st.Stage, Nodes: st.Nodes, WallMS: st.Wall.Milliseconds(), QueueMS: st.Queue.Milliseconds()}
		if !st.First.IsZero() {
			ss.FirstMS, ss.LastMS = st.First.Sub(start).Milliseconds(), st.Last.Sub(start).Milliseconds()
		}
		out = append(out, ss)
	}
	return out
}

// Summarize describes the results of a run of g that took elapsed; a node
// without a result was skipped.
func Summarize(g *Graph, results map[string]*Result, elapsed time.Duration) *Summary {
	s := &Summary{Nodes: []SummaryNode{}, DurationMS: elapsed.Milliseconds()}
	start := RunStart(results)
	for _, n := range g.Nodes() {
		r := results[n.ID]
		sn := SummaryNode{ID: n.ID, Status: "skipped"}
		if r != nil {
			sn.DurationMS = r.Duration.Milliseconds()
			sn.QueueMS = r.Queue.Milliseconds()
			if !r.Start.IsZero() {
				sn.StartMS = r.Start.Sub(start).Milliseconds()
			}
			switch r.Status {
			case StatusBuilt:
				sn.Status = "built"
			case StatusCached:
				sn.Status = "cached"
			case StatusFailed:
				sn.Status = "failed"
			}
			if r.Err != nil {
				sn.Error, _, _ = strings.Cut(r.Err.Error(), "\n")
			}
		}
		switch sn.Status {
		case "built":
			s.Built++
		case "cached":
			s.Cached++
		case "failed":
			s.Failed++
		default:
			s.Skipped++
		}
		s.Nodes = append(s.Nodes, sn)
	}
	return s
}

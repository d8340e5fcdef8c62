package graph

import (
	"strings"
	"time"
)

// Summary is every node's outcome of a run, in the graph's order, with
// the counts of each outcome: what `--summary` prints.
type Summary struct {
	Nodes      []SummaryNode `json:"nodes"`
	Built      int           `json:"built"`
	Cached     int           `json:"cached"`
	Failed     int           `json:"failed"`
	Skipped    int           `json:"skipped"`
	DurationMS int64         `json:"duration_ms"`
}

// SummaryNode is one node's outcome.
type SummaryNode struct {
	ID         string `json:"id"`
	Status     string `json:"status"` // built | cached | failed | skipped
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"` // its first line
}

// Summarize describes the results of a run of g that took elapsed; a node
// without a result was skipped.
func Summarize(g *Graph, results map[string]*Result, elapsed time.Duration) *Summary {
	s := &Summary{Nodes: []SummaryNode{}, DurationMS: elapsed.Milliseconds()}
	for _, n := range g.Nodes() {
		r := results[n.ID]
		sn := SummaryNode{ID: n.ID, Status: "skipped"}
		if r != nil {
			sn.DurationMS = r.Duration.Milliseconds()
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

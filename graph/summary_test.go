package graph

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSummarizeCountsEveryOutcome(t *testing.T) {
	g := New()
	g.Add(&Node{ID: "a", Run: func(context.Context, map[string]any) (any, bool, error) { return nil, false, nil }})
	g.Add(&Node{ID: "b", Run: func(context.Context, map[string]any) (any, bool, error) { return nil, true, nil }})
	g.Add(&Node{ID: "c", Run: func(context.Context, map[string]any) (any, bool, error) {
		return nil, false, errors.New("compile failed\nwith details")
	}})
	g.Add(&Node{ID: "d", Deps: []string{"c"}, Run: func(context.Context, map[string]any) (any, bool, error) { return nil, false, nil }})
	results, _ := g.Run(context.Background(), Options{Jobs: 2, KeepGoing: true})
	s := Summarize(g, results, 1500*time.Millisecond)
	if s.Built != 1 || s.Cached != 1 || s.Failed != 1 || s.Skipped != 1 || s.DurationMS != 1500 {
		t.Errorf("counts = %+v", s)
	}
	byID := map[string]SummaryNode{}
	for _, n := range s.Nodes {
		byID[n.ID] = n
	}
	if byID["c"].Status != "failed" || byID["c"].Error != "compile failed" {
		t.Errorf("failed node: %+v (the error's first line only)", byID["c"])
	}
	if byID["d"].Status != "skipped" || byID["a"].Status != "built" || byID["b"].Status != "cached" {
		t.Errorf("statuses: %+v", s.Nodes)
	}
	if len(s.Nodes) != 4 || s.Nodes[0].ID != "a" {
		t.Errorf("nodes not in the graph's order: %+v", s.Nodes)
	}
}

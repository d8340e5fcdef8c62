package graph

import (
	"context"
	"errors"
	"strings"
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

// TestSummarizeStages: per stage, the nodes that ran are summed (work,
// wait for a slot) and spanned; a node skipped before it ran counts in
// Nodes only; each node carries its wait and start.
func TestSummarizeStages(t *testing.T) {
	g := New()
	release := make(chan struct{})
	g.Add(&Node{ID: "compile a", Run: func(context.Context, map[string]any) (any, bool, error) { <-release; return nil, false, nil }})
	g.Add(&Node{ID: "compile b", Run: func(context.Context, map[string]any) (any, bool, error) {
		return nil, false, errors.New("boom")
	}})
	g.Add(&Node{ID: "package a", Deps: []string{"compile a"}, Run: func(context.Context, map[string]any) (any, bool, error) { return nil, false, nil }})
	g.Add(&Node{ID: "package b", Deps: []string{"compile b"}, Run: func(context.Context, map[string]any) (any, bool, error) { return nil, false, nil }})
	go func() { time.Sleep(10 * time.Millisecond); close(release) }()
	results, _ := g.Run(context.Background(), Options{Jobs: 1, KeepGoing: true})
	stageOf := func(id string) string { return id[:strings.IndexByte(id, ' ')] }
	st := g.Stages(results, stageOf)
	if len(st) != 2 || st[0].Stage != "compile" || st[0].Nodes != 2 || st[1].Stage != "package" || st[1].Nodes != 2 {
		t.Fatalf("stages = %+v", st)
	}
	ca, cb, pa := results["compile a"], results["compile b"], results["package a"]
	if st[0].Wall != ca.Duration+cb.Duration || st[0].Queue != ca.Queue+cb.Queue || !st[0].First.Equal(ca.Start) || !st[0].Last.Equal(cb.End) {
		t.Errorf("compile stage %+v from %+v and %+v", st[0], ca, cb)
	}
	if st[1].Wall != pa.Duration || !st[1].First.Equal(pa.Start) || !st[1].Last.Equal(pa.End) {
		t.Errorf("package stage %+v: package b was skipped and must not count", st[1])
	}
	if cb.Queue < ca.Duration { // -j1: b waited for a's slot
		t.Errorf("compile b waited %v for the slot compile a held %v", cb.Queue, ca.Duration)
	}
	s := Summarize(g, results, time.Second)
	ss := SummarizeStages(g, results, stageOf)
	if ss[0].WallMS != st[0].Wall.Milliseconds() || ss[0].FirstMS != 0 || ss[1].LastMS != pa.End.Sub(RunStart(results)).Milliseconds() {
		t.Errorf("summary stages = %+v", ss)
	}
	for _, n := range s.Nodes {
		if n.ID == "compile b" && (n.QueueMS != cb.Queue.Milliseconds() || n.StartMS != cb.Start.Sub(RunStart(results)).Milliseconds()) {
			t.Errorf("summary of compile b: %+v", n)
		}
	}
}

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSummaryShowsWhereTheBuildWaits: `build --summary` gives, per stage and
// per node, the work and the wait for a job slot, and when each node ran,
// so that a user can tell a build bound by -j from one bound by what its
// stages wait on.
func TestSummaryShowsWhereTheBuildWaits(t *testing.T) {
	p := monorepo(t, 3) // 6 apps
	r := p.ok("build", "./...:dev", "-j", "2", "--summary", "json")
	var s struct {
		Nodes []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			DurationMS int64  `json:"duration_ms"`
			QueueMS    int64  `json:"queue_ms"`
			StartMS    int64  `json:"start_ms"`
		} `json:"nodes"`
		Stages []struct {
			Stage   string `json:"stage"`
			Nodes   int    `json:"nodes"`
			WallMS  int64  `json:"wall_ms"`
			QueueMS int64  `json:"queue_ms"`
			FirstMS int64  `json:"first_start_ms"`
			LastMS  int64  `json:"last_end_ms"`
		} `json:"stages"`
		DurationMS int64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("--summary json: %v\n%s", err, r.stdout)
	}
	want := map[string]int{"build guest init": 1, "compile": 6, "package": 6}
	for _, st := range s.Stages {
		if want[st.Stage] != st.Nodes {
			t.Errorf("stage %s: %d nodes, want %d", st.Stage, st.Nodes, want[st.Stage])
		}
		delete(want, st.Stage)
		if st.WallMS <= 0 || st.QueueMS < 0 || st.FirstMS < 0 || st.LastMS < st.FirstMS || st.LastMS > s.DurationMS+50 {
			t.Errorf("stage %s: wall %d ms, queue %d ms, ran %d to %d ms of a %d ms run", st.Stage, st.WallMS, st.QueueMS, st.FirstMS, st.LastMS, s.DurationMS)
		}
	}
	if len(want) != 0 {
		t.Errorf("stages missing: %v\n%s", want, r.stdout)
	}
	end := map[string]int64{}
	type span struct{ start, end int64 }
	var spans []span
	for _, n := range s.Nodes {
		if n.Status != "built" || n.QueueMS < 0 || n.StartMS < 0 {
			t.Errorf("node %s: %s, queue %d ms, start %d ms", n.ID, n.Status, n.QueueMS, n.StartMS)
		}
		end[n.ID] = n.StartMS + n.DurationMS
		spans = append(spans, span{n.StartMS, n.StartMS + n.DurationMS})
	}
	// A package starts only after its compile ended.
	for _, n := range s.Nodes {
		if app, ok := strings.CutPrefix(n.ID, "package "); ok {
			app, _, _ = strings.Cut(app, " ")
			if c, ok := end["compile "+app]; !ok || n.StartMS < c {
				t.Errorf("%s started at %d ms, its compile ended at %d ms", n.ID, n.StartMS, c)
			}
		}
	}
	// At -j2 two nodes ran at once at some point (the executor's own
	// times, not a wall-clock bound).
	overlap := false
	for i := range spans {
		for j := i + 1; j < len(spans); j++ {
			if spans[i].start < spans[j].end && spans[j].start < spans[i].end {
				overlap = true
			}
		}
	}
	if !overlap {
		t.Errorf("no two nodes overlapped at -j2:\n%s", r.stdout)
	}

	// The same as text, on stderr.
	p.write("services/s01/a/main.go", tinyMain("services/s01 a v2"))
	r = p.ok("build", "./...:dev", "-j", "2", "--summary", "text")
	stageLine := false
	for _, l := range strings.Split(r.stderr, "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[0] == "compile" && f[1] == "6" && strings.Contains(l, "per node") {
			stageLine = true
		}
	}
	if !stageLine {
		t.Errorf("--summary text has no line for the compile stage's 6 nodes:\n%s", r.stderr)
	}
	for _, w := range []string{"wait for a slot", "status", "waited", "compile services/s01:a01"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("--summary text lacks %q:\n%s", w, r.stderr)
		}
	}
}

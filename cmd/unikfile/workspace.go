package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/address"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/pipeline"
)

// workspace is what build, up and graph work on: the Unikfiles the
// addresses name, loaded together.
type workspace struct {
	w     *lang.Workspace
	addrs []address.Address
	// base is the directory addresses are relative to (-C, or --file's
	// folder); mainDir the current Unikfile's folder, which plain names
	// refer to.
	base, mainDir string
}

// runFlags are the execution flags of build and up.
type runFlags struct {
	keepGoing    bool
	changedSince string
	summary      string
}

func (f *runFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.keepGoing, "keep-going", "k", false, "after a failure, go on with everything that does not depend on it; exit 1 at the end")
	cmd.Flags().StringVar(&f.changedSince, "changed-since", "", "only what `git diff --name-only REV` (and untracked files) affects: apps whose source holds a changed file, and everything of a changed Unikfile")
	cmd.Flags().StringVar(&f.summary, "summary", "auto", "node summary at the end: auto (text on stderr with several Unikfiles or --keep-going), text, json (on stdout, instead of the usual output), none")
}

func (f *runFlags) check(jsonOut bool) error {
	switch f.summary {
	case "auto", "text", "none":
	case "json":
		if jsonOut {
			return fmt.Errorf("--summary json and --json both print on stdout; choose one")
		}
	default:
		return fmt.Errorf("--summary %q: want auto, text, json or none", f.summary)
	}
	return nil
}

// loadWorkspace parses args as addresses and loads the Unikfiles they
// name (plus those their targets reference), printing diagnostics.
func (c *cli) loadWorkspace(args []string) (*workspace, error) {
	ws, src, diags, err := c.readWorkspace(args)
	if err != nil {
		return nil, err
	}
	if len(diags) > 0 {
		lang.WriteDiagnostics(c.stderr, diags, src, isTerminal(c.stderr))
	}
	if diags.HasErrors() {
		return nil, &reportedError{err: diags}
	}
	return ws, nil
}

// readWorkspace loads what args name and returns the diagnostics without
// printing them; ws.w is nil when they hold an error.
func (c *cli) readWorkspace(args []string) (*workspace, lang.Sources, hcl.Diagnostics, error) {
	addrs, err := address.ParseAll(args)
	if err != nil {
		return nil, nil, nil, err
	}
	loc, err := c.unikfileLocation()
	if err != nil {
		return nil, nil, nil, err
	}
	ws := &workspace{addrs: addrs, base: filepath.Dir(loc), mainDir: filepath.Dir(loc)}
	mainFile := ""
	if len(addrs) == 0 || hasPlain(addrs) {
		if mainFile, err = c.unikfilePath(); err != nil {
			return nil, nil, nil, err
		}
	}
	files, err := address.Files(ws.base, mainFile, addrs, c.digests.Saw)
	if err != nil {
		return nil, nil, nil, err
	}
	vars, err := c.parseVars()
	if err != nil {
		return nil, nil, nil, err
	}
	w, src, diags := lang.LoadWorkspace(ws.base, files, lang.Options{Vars: vars})
	ws.w = w
	return ws, src, diags, nil
}

func hasPlain(addrs []address.Address) bool {
	for _, a := range addrs {
		if a.Plain {
			return true
		}
	}
	return false
}

// onlyChanged keeps the apps that the changes since rev affect.
func (c *cli) onlyChanged(ctx context.Context, ws *workspace, apps []lang.ProjectApp, rev string) ([]lang.ProjectApp, error) {
	files, err := address.ChangedFiles(ctx, ws.base, rev)
	if err != nil {
		return nil, err
	}
	affected, err := address.Affected(apps, files)
	if err != nil {
		return nil, err
	}
	var out []lang.ProjectApp
	for _, pa := range apps {
		if affected[pa.App] {
			out = append(out, pa)
		}
	}
	return out, nil
}

// summarize prints the end-of-run summary as f asks.
func (c *cli) summarize(f *runFlags, multi bool, g *graph.Graph, results map[string]*graph.Result, elapsed time.Duration) error {
	mode := f.summary
	if mode == "auto" {
		mode = "none"
		if multi || f.keepGoing {
			mode = "text"
		}
	}
	s := newSummary(g, results, elapsed)
	switch mode {
	case "text":
		var b bytes.Buffer // one write, not one per cell
		if err := s.writeText(&b); err != nil {
			return err
		}
		_, err := c.stderr.Write(b.Bytes())
		return err
	case "json":
		return writeJSON(c.stdout, s)
	}
	return nil
}

// summary is every node's outcome, as --summary json prints it.
type summary struct {
	Nodes      []summaryNode  `json:"nodes"`
	Stages     []summaryStage `json:"stages"`
	Built      int            `json:"built"`
	Cached     int            `json:"cached"`
	Failed     int            `json:"failed"`
	Skipped    int            `json:"skipped"`
	DurationMS int64          `json:"duration_ms"`
}

// summaryStage is graph.StageTime: the stage's work and wait for job slots
// summed over its nodes, and when it ran, from the start of the run.
type summaryStage struct {
	Stage   string `json:"stage"`
	Nodes   int    `json:"nodes"`
	WallMS  int64  `json:"wall_ms"`
	QueueMS int64  `json:"queue_ms"`
	FirstMS int64  `json:"first_start_ms"`
	LastMS  int64  `json:"last_end_ms"`
}

type summaryNode struct {
	ID         string `json:"id"`
	Status     string `json:"status"` // built | cached | failed | skipped
	DurationMS int64  `json:"duration_ms"`
	// QueueMS is the wait for a job slot after the dependencies were
	// done; StartMS when the node started, from the start of the run.
	QueueMS int64  `json:"queue_ms"`
	StartMS int64  `json:"start_ms"`
	Error   string `json:"error,omitempty"`
}

func newSummary(g *graph.Graph, results map[string]*graph.Result, elapsed time.Duration) *summary {
	s := &summary{Nodes: []summaryNode{}, DurationMS: elapsed.Milliseconds()}
	runStart := graph.RunStart(results)
	for _, n := range g.Nodes() {
		r := results[n.ID]
		sn := summaryNode{ID: n.ID, Status: "skipped"}
		if r != nil {
			sn.DurationMS = r.Duration.Milliseconds()
			sn.QueueMS = r.Queue.Milliseconds()
			if !r.Start.IsZero() {
				sn.StartMS = r.Start.Sub(runStart).Milliseconds()
			}
			switch r.Status {
			case graph.StatusBuilt:
				sn.Status = "built"
			case graph.StatusCached:
				sn.Status = "cached"
			case graph.StatusFailed:
				sn.Status = "failed"
			}
			if r.Err != nil {
				sn.Error = firstLine(r.Err.Error())
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
	for _, st := range g.Stages(results, pipeline.Stage) {
		ss := summaryStage{Stage: st.Stage, Nodes: st.Nodes, WallMS: st.Wall.Milliseconds(), QueueMS: st.Queue.Milliseconds()}
		if !st.First.IsZero() {
			ss.FirstMS, ss.LastMS = st.First.Sub(runStart).Milliseconds(), st.Last.Sub(runStart).Milliseconds()
		}
		s.Stages = append(s.Stages, ss)
	}
	return s
}

func (s *summary) writeText(w io.Writer) error {
	fmt.Fprintf(w, "\nSummary: %d node(s) in %s: %d built, %d cached, %d failed, %d skipped\n",
		len(s.Nodes), round(time.Duration(s.DurationMS)*time.Millisecond), s.Built, s.Cached, s.Failed, s.Skipped)
	ms := func(v int64) string { return round(time.Duration(v) * time.Millisecond).String() }
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  stage\tnodes\twork\twait for a slot\tran\n")
	for _, st := range s.Stages {
		wait, ran := "-", "-"
		if st.WallMS > 0 || st.LastMS > 0 {
			wait = ms(st.QueueMS/int64(st.Nodes)) + " per node"
			ran = ms(st.FirstMS) + " to " + ms(st.LastMS)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", st.Stage, st.Nodes, ms(st.WallMS), wait, ran)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "  status\ttook\twaited\tnode\n")
	for _, n := range s.Nodes {
		d, q := "-", "-"
		if n.Status != "skipped" {
			d, q = ms(n.DurationMS), ms(n.QueueMS)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Status, d, q, n.ID)
	}
	return tw.Flush()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// changedTargets keeps the targets that run an app the changes since rev
// affect.
func (c *cli) changedTargets(ctx context.Context, ws *workspace, targets []lang.ProjectTarget, rev string) ([]lang.ProjectTarget, error) {
	var apps []lang.ProjectApp
	for _, pt := range targets {
		apps = append(apps, ws.w.TargetApps(pt.Project, pt.Target)...)
	}
	changed, err := c.onlyChanged(ctx, ws, apps, rev)
	if err != nil {
		return nil, err
	}
	hit := map[*lang.App]bool{}
	for _, pa := range changed {
		hit[pa.App] = true
	}
	var out []lang.ProjectTarget
	for _, pt := range targets {
		for _, pa := range ws.w.TargetApps(pt.Project, pt.Target) {
			if hit[pa.App] {
				out = append(out, pt)
				break
			}
		}
	}
	return out, nil
}

package main

import (
	"bytes"
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
	"github.com/unikfile/unikfile/stages/registry"
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
	w, src, diags := lang.LoadWorkspace(ws.base, files, lang.Options{Vars: vars, Catalog: registry.Catalog()})
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

// summarize prints the end-of-run summary as f asks.
func (c *cli) summarize(f *runFlags, multi bool, g *graph.Graph, results map[string]*graph.Result, elapsed time.Duration) error {
	mode := summaryMode(f, multi)
	s := graph.Summarize(g, results, elapsed)
	s.Stages = graph.SummarizeStages(g, results, pipeline.Stage)
	switch mode {
	case "text":
		var b bytes.Buffer // one write, not one per cell
		if err := writeSummary(&b, s); err != nil {
			return err
		}
		_, err := c.stderr.Write(b.Bytes())
		return err
	case "json":
		return writeJSON(c.stdout, s)
	}
	return nil
}

// summaryMode is the summary f asks for: text, json or none.
func summaryMode(f *runFlags, multi bool) string {
	mode := f.summary
	if mode == "auto" {
		mode = "none"
		if multi || f.keepGoing {
			mode = "text"
		}
	}
	return mode
}

// writeSummary prints s as two tables: one stage a line, one node a line.
func writeSummary(w io.Writer, s *graph.Summary) error {
	return writeSummaryTook(w, s, round(time.Duration(s.DurationMS)*time.Millisecond).String())
}

// writeSummaryTook is writeSummary with the run's duration as given (a
// build stamp's replay prints its own).
func writeSummaryTook(w io.Writer, s *graph.Summary, took string) error {
	fmt.Fprintf(w, "\nSummary: %d node(s) in %s: %d built, %d cached, %d failed, %d skipped\n",
		len(s.Nodes), took, s.Built, s.Cached, s.Failed, s.Skipped)
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

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/pipeline"
)

// Replaying build stamps (pipeline/stamp.go says what a stamp covers):
// what the stamped build printed is printed again.

// buildStamp is what a stamp replays.
type buildStamp struct {
	Stdout string   `json:"stdout"`
	Nodes  []string `json:"nodes"`
	Multi  bool     `json:"multi"`
}

// openDigests opens the cache and its stat cache once per command.
func (c *cli) openDigests() (*cache.Store, error) {
	cs, err := c.cacheStore()
	if err != nil {
		return nil, err
	}
	if c.digests == nil {
		c.digests = cache.OpenStatCache(filepath.Join(cs.Dir(), "statcache"))
	}
	return cs, nil
}

// stampPath is where the stamp of this exact build invocation lives.
func (c *cli) stampPath(cs *cache.Store, cmd *cobra.Command, args []string) string {
	wd, _ := os.Getwd()
	inv := pipeline.Invocation{Tool: toolVersionFrom(c.digests), Command: cmd.CommandPath(), Args: args, Dir: wd, Environ: os.Environ()}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { inv.Flags = append(inv.Flags, f.Name+"="+f.Value.String()) })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { inv.Flags = append(inv.Flags, "global "+f.Name+"="+f.Value.String()) })
	return pipeline.StampPath(cs.Dir(), inv)
}

// replayStamp prints what the stamped build printed, if the stamp holds.
func (c *cli) replayStamp(path string, rf *runFlags) bool {
	start := time.Now()
	payload, n, ok := c.digests.CheckStamp(path)
	if !ok {
		return false
	}
	var st buildStamp
	if json.Unmarshal(payload, &st) != nil {
		return false
	}
	g := graph.New()
	results := map[string]*graph.Result{}
	var lines bytes.Buffer // one write: a line per write costs more than the check
	for _, id := range st.Nodes {
		g.Add(&graph.Node{ID: id})
		results[id] = &graph.Result{ID: id, Status: graph.StatusCached}
		fmt.Fprintf(&lines, "%s: up to date\n", id)
	}
	fmt.Fprintf(&lines, "Nothing changed since the last identical build (%d inputs checked by their metadata).\n", n)
	c.stderr.Write(lines.Bytes())
	if err := c.summarize(rf, st.Multi, g, results, time.Since(start)); err != nil {
		return false
	}
	fmt.Fprint(c.stdout, st.Stdout)
	return true
}

// writeStamp records a successful build's inputs and output.
func (c *cli) writeStamp(path string, g *graph.Graph, multi bool, stdout string, imageDirs []string) {
	st := buildStamp{Stdout: stdout, Multi: multi}
	for _, n := range g.Nodes() {
		st.Nodes = append(st.Nodes, n.ID)
	}
	payload, _ := json.Marshal(st)
	if err := pipeline.RecordStamp(c.digests, path, imageDirs, payload); err != nil {
		fmt.Fprintf(c.stderr, "warning: %v\n", err)
	}
}

package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/internal/stamp"
	"github.com/unikfile/unikfile/pipeline"
)

// Build stamps (internal/stamp owns them, pipeline/stamp.go says what
// they cover): a process whose stamp holds is answered before the binary
// initialises (cmd/unikfile/internal/noop); the command checks again only
// what that did not (a --cache-dir, UNIKFILE_PROFILE).

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

// replayStamp prints what the stamped build printed, if inv's stamp
// holds and was not already checked when the process started.
func (c *cli) replayStamp(cs *cache.Store, inv stamp.Invocation) (bool, error) {
	start := time.Now()
	key := inv.Key()
	if stamp.Checked(key) {
		return false, nil
	}
	r, _, ok := c.digests.CheckStamp(stamp.Path(cs.Dir(), inv), key)
	if !ok {
		return false, nil
	}
	return true, r.Print(c.stdout, c.stderr, time.Since(start))
}

// writeStamp records a successful build's inputs and what a replay of it
// prints: a line per node, the count of paths checked, the summary the
// build's flags ask for (every node cached) and the build's stdout.
func (c *cli) writeStamp(cs *cache.Store, inv stamp.Invocation, rf *runFlags, g *graph.Graph, multi bool, stdout string, imageDirs []string) {
	replay := func(paths int) stamp.Replay {
		results := map[string]*graph.Result{}
		var stderr bytes.Buffer
		for _, n := range g.Nodes() {
			results[n.ID] = &graph.Result{ID: n.ID, Status: graph.StatusCached}
			fmt.Fprintf(&stderr, "%s: up to date\n", n.ID)
		}
		fmt.Fprintf(&stderr, "Nothing changed since the last identical build (%d inputs checked by their metadata).\n", paths)
		if summaryMode(rf, multi) == "text" {
			s := graph.Summarize(g, results, 0)
			s.Stages = graph.SummarizeStages(g, results, pipeline.Stage)
			writeSummaryTook(&stderr, s, stamp.Elapsed)
		}
		return stamp.Replay{Stdout: []byte(stdout), Stderr: stderr.Bytes()}
	}
	if err := pipeline.RecordStamp(c.digests, stamp.Path(cs.Dir(), inv), inv, imageDirs, replay); err != nil {
		fmt.Fprintf(c.stderr, "warning: %v\n", err)
	}
}

// stampInvocation is this command as stamps are keyed: the executable,
// the arguments it was given, the working directory, the environment.
func (c *cli) stampInvocation() (stamp.Invocation, bool) {
	if c.args == nil {
		return stamp.Invocation{}, false
	}
	return stamp.Current(c.args)
}

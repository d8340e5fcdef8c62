package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/address"
	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/pipeline"
)

// graphNode is one node as `graph` shows it.
type graphNode struct {
	ID     string   `json:"id"`
	Deps   []string `json:"deps"`
	Status string   `json:"status"` // cached | build | error | deploy
	Error  string   `json:"error,omitempty"`
}

func (c *cli) graphCommand() *cobra.Command {
	var dot, jsonOut, up bool
	cmd := &cobra.Command{
		Use:   "graph [ADDRESS...]",
		Short: "Show the build graph (compile and package nodes) and which nodes are cached",
		Long: `graph prints the nodes that build the apps the addresses name, as a text
tree (each image with what it is made of), as Graphviz DOT (--dot) or as
JSON. Each node is marked cached (a build would reuse it) or build (a build
would run it). Cache keys are computed as a build computes them (source
digests, toolchain identity, kernel) but nothing is compiled or written.
With --up the addresses name targets, as for up, and each target's deploy
node is shown too (marked deploy: up always compares it with what runs).`,
		Example: `  unikfile graph
  unikfile graph ./...
  unikfile graph ./...:prod --up
  unikfile graph ./...:prod --dot | dot -Tsvg > graph.svg`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dot && jsonOut {
				return fmt.Errorf("--dot and --json: choose one")
			}
			ws, err := c.loadWorkspace(args)
			if err != nil {
				return err
			}
			env, err := c.pipelineEnv(false)
			if err != nil {
				return err
			}
			env.Cache = env.Cache.LookupOnly()
			var plan *pipeline.Plan
			if up {
				targets, err := address.Targets(ws.w, ws.base, ws.mainDir, ws.addrs)
				if err != nil {
					return err
				}
				plan = pipeline.WorkspaceUpGraph(ws.w, targets, env)
			} else {
				apps, err := address.Apps(ws.w, ws.base, ws.mainDir, ws.addrs)
				if err != nil {
					return err
				}
				plan = pipeline.WorkspaceBuildGraph(ws.w, apps, env, "", "")
			}
			// Deploy nodes are drawn, never run.
			deploys := map[string]bool{}
			for _, id := range plan.Deploys {
				deploys[id] = true
			}
			lookup := graph.New()
			for _, n := range plan.Graph.Nodes() {
				if !deploys[n.ID] {
					lookup.Add(n)
				}
			}
			results, err := lookup.Run(cmd.Context(), graph.Options{Jobs: c.jobs, KeepGoing: true})
			if results == nil {
				return err
			}
			if cmd.Context().Err() != nil {
				return &interruptedError{err: cmd.Context().Err()}
			}
			if c.digests != nil {
				c.digests.Save()
			}
			nodes := graphNodes(plan.Graph, results)
			for i := range nodes {
				if deploys[nodes[i].ID] {
					nodes[i].Status = "deploy"
				}
			}
			switch {
			case jsonOut:
				return writeJSON(c.stdout, nodes)
			case dot:
				return writeDOT(c.stdout, nodes)
			}
			return writeTree(c.stdout, nodes)
		},
	}
	cmd.Flags().BoolVar(&dot, "dot", false, "print Graphviz DOT")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the nodes as JSON")
	cmd.Flags().BoolVar(&up, "up", false, "the graph of up: addresses name targets, and their deploy nodes are shown")
	return cmd
}

func graphNodes(g *graph.Graph, results map[string]*graph.Result) []graphNode {
	var out []graphNode
	for _, n := range g.Nodes() {
		gn := graphNode{ID: n.ID, Deps: append([]string{}, n.Deps...), Status: "build"}
		if r := results[n.ID]; r != nil {
			switch {
			case r.Status == graph.StatusCached:
				gn.Status = "cached"
			case r.Status == graph.StatusFailed && !errors.Is(r.Err, cache.ErrNotCached):
				gn.Status, gn.Error = "error", firstLine(r.Err.Error())
			}
		}
		out = append(out, gn)
	}
	return out
}

// writeTree prints each final node (one no other node depends on) with
// what it depends on below it.
func writeTree(w io.Writer, nodes []graphNode) error {
	byID := map[string]graphNode{}
	used := map[string]bool{}
	counts := map[string]int{}
	for _, n := range nodes {
		byID[n.ID] = n
		counts[n.Status]++
		for _, d := range n.Deps {
			used[d] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d node(s): %d cached, %d to build", len(nodes), counts["cached"], counts["build"])
	if counts["deploy"] > 0 {
		fmt.Fprintf(&b, ", %d deploy", counts["deploy"])
	}
	if counts["error"] > 0 {
		fmt.Fprintf(&b, ", %d with errors", counts["error"])
	}
	b.WriteString("\n\n")
	var walk func(id, prefix string, last bool, top bool)
	walk = func(id, prefix string, last, top bool) {
		n := byID[id]
		branch, next := "", ""
		if !top {
			branch, next = "├── ", "│   "
			if last {
				branch, next = "└── ", "    "
			}
		}
		mark := "[" + n.Status + "]"
		if n.Error != "" {
			mark += " " + n.Error
		}
		fmt.Fprintf(&b, "%s%s%s  %s\n", prefix, branch, n.ID, mark)
		for i, d := range n.Deps {
			walk(d, prefix+next, i == len(n.Deps)-1, false)
		}
	}
	for _, n := range nodes {
		if !used[n.ID] {
			walk(n.ID, "", true, true)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeDOT prints the graph for Graphviz; edges point from a dependency
// to what is built from it.
func writeDOT(w io.Writer, nodes []graphNode) error {
	var b strings.Builder
	b.WriteString("digraph unikfile {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n")
	colors := map[string]string{"cached": "#d5e8d4", "build": "#fff2cc", "error": "#f8cecc", "deploy": "#dae8fc"}
	for _, n := range nodes {
		fmt.Fprintf(&b, "  %s [label=%s, fillcolor=%q];\n", strconv.Quote(n.ID), strconv.Quote(n.ID+"\n"+n.Status), colors[n.Status])
	}
	for _, n := range nodes {
		for _, d := range n.Deps {
			fmt.Fprintf(&b, "  %s -> %s;\n", strconv.Quote(d), strconv.Quote(n.ID))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

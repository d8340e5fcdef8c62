package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/buildkit"
	pack "github.com/unikfile/unikfile/stages/package"
)

// The no-op fast path of `build`: after a successful build, a stamp
// records the metadata of everything the build relied on (the Unikfiles,
// the folders searched and digested, every file digested, the toolchain's
// binary and settings file, the kernel tree, the images produced) and what
// it printed. The next identical build (same arguments, flags, relevant
// environment and unikfile binary) whose inputs all have the same
// metadata, outside the racy window, prints the same without loading a
// Unikfile or running a toolchain. Any doubt means a normal build.

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

// stampPath is where the stamp of this exact build invocation lives: every
// flag's value (local and global, set or not) is part of it, so a new flag
// can never replay an output made without it.
func (c *cli) stampPath(cs *cache.Store, cmd *cobra.Command, args []string) string {
	h := sha256.New()
	wd, _ := os.Getwd()
	fmt.Fprintf(h, "tool %s\ncmd %s\nargs %q\nwd %q\n", toolVersionFrom(c.digests), cmd.CommandPath(), args, wd)
	cmd.Flags().VisitAll(func(f *pflag.Flag) { fmt.Fprintf(h, "flag %s=%q\n", f.Name, f.Value.String()) })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { fmt.Fprintf(h, "global %s=%q\n", f.Name, f.Value.String()) })
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "CGO_"), strings.HasPrefix(name, "UNIKFILE_"),
			name == "PATH", name == "HOME", strings.HasPrefix(name, "XDG_"):
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	fmt.Fprintf(h, "env %q\n", env)
	return filepath.Join(cs.Dir(), "stamps", hex.EncodeToString(h.Sum(nil)))
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

// sawToolchain records the Go toolchain's binary and its settings file,
// which `go env` answers from (stamps are written for Go apps only).
func (c *cli) sawToolchain() {
	if p, err := exec.LookPath("go"); err == nil {
		c.digests.Saw(p)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			c.digests.Saw(real)
		}
	}
	if p := os.Getenv("GOENV"); p != "" && p != "off" {
		c.digests.Saw(p)
	} else if dir, err := os.UserConfigDir(); err == nil {
		c.digests.Saw(filepath.Join(dir, "go", "env"))
	}
}

// stampable says whether a stamp would cover everything this build relied
// on: Go apps (whose toolchain and settings the stamp records), compiled
// locally (a builder image's tag can move on a registry), into
// kernel+initrd images (the disk tools are not recorded). Other builds
// record no stamp; they still skip unchanged work through the cache.
func (c *cli) stampable(apps []lang.ProjectApp, format string) bool {
	if format != pack.FormatKernelInitrd || (c.executor != "" && c.executor != "local") || os.Getenv(buildkit.HostEnv) != "" {
		return false
	}
	for _, pa := range apps {
		if pa.App.Language != "go" {
			return false
		}
		if e := pa.Project.Build.Executor; e != "" && e != "local" {
			return false
		}
	}
	return true
}

// writeStamp records a successful build's inputs and output.
func (c *cli) writeStamp(path string, g *graph.Graph, multi bool, stdout string, imageDirs []string) {
	for _, dir := range imageDirs {
		c.digests.Saw(dir)
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				c.digests.Saw(filepath.Join(dir, e.Name()))
			}
		}
	}
	snap, ok := c.digests.Snapshot()
	if !ok {
		return
	}
	st := buildStamp{Stdout: stdout, Multi: multi}
	for _, n := range g.Nodes() {
		st.Nodes = append(st.Nodes, n.ID)
	}
	payload, _ := json.Marshal(st)
	if err := cache.WriteStamp(path, snap, payload); err != nil {
		fmt.Fprintf(c.stderr, "warning: %v\n", err)
	}
}

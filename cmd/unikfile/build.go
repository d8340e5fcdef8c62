package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/pipeline"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

func (c *cli) buildCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "build [APP...]",
		Short: "Compile and package apps into images (all apps by default)",
		Example: `  unikfile build              # every app of ./Unikfile
  unikfile build hello        # one app
  unikfile build --json | jq -r '.[0].digest'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := c.load()
			if err != nil {
				return err
			}
			apps, err := selectApps(p, args)
			if err != nil {
				return err
			}
			env, err := c.pipelineEnv(false)
			if err != nil {
				return err
			}
			g := pipeline.BuildGraph(p, apps, env)
			results, err := c.runGraph(cmd.Context(), g)
			if err != nil {
				return err
			}
			var out []imageJSON
			for _, n := range g.Nodes() {
				if img, ok := results[n.ID].Output.(*pipeline.Image); ok {
					out = append(out, imageJSON{App: img.App, Digest: img.Image.Digest, Dir: img.Dir, Kernel: img.Image.KernelVersion, Format: img.Image.Format})
				}
			}
			if jsonOut {
				return writeJSON(c.stdout, out)
			}
			for _, i := range out {
				fmt.Fprintf(c.stdout, "%s: image %s (%s, kernel %s)\n  %s\n", i.App, short(i.Digest), i.Format, i.Kernel, i.Dir)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the images as JSON")
	return cmd
}

type imageJSON struct {
	App    string `json:"app"`
	Digest string `json:"digest"`
	Format string `json:"format"`
	Kernel string `json:"kernel"`
	Dir    string `json:"dir"`
}

func selectApps(p *lang.Project, names []string) ([]*lang.App, error) {
	if len(names) == 0 {
		return p.Apps, nil
	}
	var apps []*lang.App
	for _, n := range names {
		a := p.App(n)
		if a == nil {
			return nil, fmt.Errorf("no app named %q in %s; apps: %s", n, p.File, strings.Join(appNames(p), ", "))
		}
		apps = append(apps, a)
	}
	return apps, nil
}

func appNames(p *lang.Project) []string {
	var n []string
	for _, a := range p.Apps {
		n = append(n, a.Name)
	}
	return n
}

func selectTargets(p *lang.Project, names []string) ([]*lang.Target, error) {
	if len(p.Targets) == 0 {
		return nil, fmt.Errorf("%s declares no target; add one, e.g. target \"dev\" { provider = \"qemu\" apps = [app.NAME] }", p.File)
	}
	if len(names) == 0 {
		return p.Targets, nil
	}
	var ts []*lang.Target
	for _, n := range names {
		t := p.Target(n)
		if t == nil {
			var all []string
			for _, t := range p.Targets {
				all = append(all, t.Name)
			}
			return nil, fmt.Errorf("no target named %q in %s; targets: %s", n, p.File, strings.Join(all, ", "))
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func (c *cli) pipelineEnv(withState bool) (*pipeline.Env, error) {
	cs, err := c.cacheStore()
	if err != nil {
		return nil, err
	}
	env := &pipeline.Env{Cache: cs, ToolVersion: toolVersion()}
	if withState {
		st, dir, err := c.stateStore()
		if err != nil {
			return nil, err
		}
		env.State, env.StateDir = st, dir
	}
	return env, nil
}

// runGraph runs g with progress on stderr.
func (c *cli) runGraph(ctx context.Context, g *graph.Graph) (map[string]*graph.Result, error) {
	pr := newProgress(c.stderr, isTerminal(c.stderr))
	results, err := g.Run(ctx, graph.Options{Jobs: c.jobs, OnEvent: pr.Event})
	pr.Close()
	if ctx.Err() != nil {
		return results, &interruptedError{err: ctx.Err()}
	}
	return results, err
}

func (c *cli) upCommand() *cobra.Command {
	var attach, jsonOut, watching bool
	var timeout time.Duration
	var wf watchFlags
	cmd := &cobra.Command{
		Use:   "up [TARGET...]",
		Short: "Build what changed and bring targets up (all targets by default)",
		Long: `up builds every app the targets use (cached stages are skipped), boots each
app whose image or settings changed, waits until its ports answer, and then
stops the instance it replaces. Instances whose image and settings did not
change are left alone; instances of apps no longer in a target are stopped.

By default instances keep running after up returns; --attach stays in the
foreground, streams the console, and exits with the app's exit status.`,
		Example: `  unikfile up                 # every target
  unikfile up dev             # one target
  unikfile up --attach        # foreground; Ctrl-C stops the VM
  unikfile up --var port=9090
  unikfile up --watch         # stay, and serve each saved edit (see unikfile watch --help)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if watching {
				if attach || jsonOut || len(args) > 1 {
					return errors.New("--watch runs one target in the foreground like `unikfile watch`: it takes at most one TARGET and no --attach or --json")
				}
				return c.runWatch(cmd.Context(), strings.Join(args, ""), wf, timeout)
			}
			p, err := c.load()
			if err != nil {
				return err
			}
			targets, err := selectTargets(p, args)
			if err != nil {
				return err
			}
			env, err := c.pipelineEnv(true)
			if err != nil {
				return err
			}
			env.Timeout = timeout
			if attach {
				if n := countApps(targets); n != 1 {
					return fmt.Errorf("--attach needs exactly one app to run, and the selected targets run %d; name one target with one app", n)
				}
				env.Attach = true
				env.Console = c.stdout
			}
			start := time.Now()
			g := pipeline.UpGraph(p, targets, env)
			results, err := c.runGraph(cmd.Context(), g)
			var all []deploy.Result
			for _, t := range targets {
				if r := results[pipeline.DeployID(t.Name)]; r != nil {
					if rs, ok := r.Output.([]deploy.Result); ok {
						all = append(all, rs...)
					}
				}
			}
			if attach && cmd.Context().Err() == nil {
				// The console was on screen: the app's status says it all.
				for _, r := range all {
					if r.Instance != nil && r.Instance.ExitStatus != nil {
						fmt.Fprintf(c.stderr, "%s exited with status %d\n", r.Instance.App, *r.Instance.ExitStatus)
						if *r.Instance.ExitStatus != 0 {
							return &statusError{code: *r.Instance.ExitStatus}
						}
						return nil
					}
				}
			}
			if err != nil || attach {
				return err
			}
			if jsonOut {
				return writeJSON(c.stdout, all)
			}
			changed := false
			for _, r := range all {
				if r.Action != deploy.ActionUnchanged {
					changed = true
				}
				where := urls(r.Instance)
				if r.Action == deploy.ActionRemoved {
					where = ""
				}
				fmt.Fprintf(c.stdout, "%s/%s: %s %s%s\n", r.Target, r.App, r.Action, r.Instance.ID, where)
			}
			if !changed {
				fmt.Fprintf(c.stdout, "Nothing changed; %d instance(s) up to date (%s).\n", len(all), round(time.Since(start)))
			}
			c.warnUndeclaredTargets(p, env)
			return nil
		},
	}
	cmd.Flags().BoolVar(&attach, "attach", false, "stay in the foreground with the console; exit with the app's status")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait for each app to be ready (default: 2m under TCG emulation, 30s with KVM)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the instances as JSON")
	cmd.Flags().BoolVar(&watching, "watch", false, "stay in the foreground and rebuild and swap apps as their files change (unikfile watch)")
	wf.add(cmd, false)
	return cmd
}

func countApps(ts []*lang.Target) int {
	n := 0
	for _, t := range ts {
		n += len(t.Apps)
	}
	return n
}

func urls(inst *state.Instance) string {
	var parts []string
	for _, p := range inst.Ports {
		parts = append(parts, fmt.Sprintf("http://%s:%d/", p.Bind, p.Host))
	}
	if len(parts) == 0 {
		return ""
	}
	return " at " + strings.Join(parts, " ")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// warnUndeclaredTargets points at running instances of targets the
// Unikfile no longer declares: up does not remove them on its own, since a
// renamed target is a guess, but the user should know they still run.
func (c *cli) warnUndeclaredTargets(p *lang.Project, env *pipeline.Env) {
	insts, err := env.State.List(state.Filter{Project: p.Dir})
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, i := range insts {
		if i.Alive() && p.Target(i.Target) == nil && !seen[i.Target] {
			seen[i.Target] = true
			fmt.Fprintf(c.stderr, "note: target %q is no longer in %s but has running instances; stop them with `unikfile down %s`\n", i.Target, p.File, i.Target)
		}
	}
}

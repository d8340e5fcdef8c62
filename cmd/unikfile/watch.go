package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/cache/gc"
	"github.com/unikfile/unikfile/devloop"
	"github.com/unikfile/unikfile/stages/registry"
)

// watchFlags are the settings `watch` and `up --watch` share.
type watchFlags struct {
	jsonOut               bool
	timeout, drain, quiet time.Duration
}

func (f *watchFlags) add(cmd *cobra.Command, withJSON bool) {
	if withJSON {
		cmd.Flags().BoolVar(&f.jsonOut, "json", false, "print one JSON object per event on stdout (console lines go to stderr)")
	}
	cmd.Flags().DurationVar(&f.drain, "drain", devloop.DefaultDrain, "how long an old VM's open connections may go on after a new version takes over")
	cmd.Flags().DurationVar(&f.quiet, "quiet", 0, "how long the tree must be quiet before a build starts (default 100ms; a burst is cut at 5s)")
}

func (c *cli) watchCommand() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [TARGET]",
		Short: "Build, boot, and follow edits: each save serves a new version on the same port",
		Long: `watch builds the apps of one QEMU target, boots them, and serves their host
ports itself (a TCP forwarder in this process). It then follows the project's
files: a save rebuilds only the apps whose source holds the file (a build in
progress that the save makes stale is cancelled), boots the new version next
to the old one on an internal port, and once it answers, new connections go
to it; the old VM's open connections get --drain to finish, then it stops.
No connection is refused during a swap.

A failed build or boot prints why and leaves the old version serving. An
edited Unikfile is read again; a bad one is reported and the old version
keeps running. Ctrl-C (or SIGTERM) stops every VM watch started and exits 0.

watch refuses a target that instances of 'unikfile up' run (stop them with
'unikfile down TARGET'); 'up' refuses a target a running watch serves.
Ignored: .unikignore and .dockerignore patterns, version control folders,
editor temporary files, and unikfile's cache and state directories.`,
		Example: `  unikfile watch               # the project's only QEMU target
  unikfile watch dev           # a named target
  unikfile up --watch          # the same as watch
  unikfile watch --json | jq -c 'select(.event == "swapped")'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return c.runWatch(cmd.Context(), target, f, 0)
		},
	}
	f.add(cmd, true)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "how long to wait for each boot to be ready (default: 2m under TCG emulation, 30s with KVM)")
	return cmd
}

// runWatch runs the loop until ctx ends.
func (c *cli) runWatch(ctx context.Context, target string, f watchFlags, timeout time.Duration) error {
	if strings.ContainsAny(target, "/:") {
		return fmt.Errorf("watch takes a target name of the Unikfile in the project directory, not the address %q; choose the folder with -C, e.g. unikfile -C services/api watch dev", target)
	}
	if f.timeout == 0 {
		f.timeout = timeout
	}
	path, err := c.unikfilePath()
	if err != nil {
		return err
	}
	vars, err := c.parseVars()
	if err != nil {
		return err
	}
	env, err := c.pipelineEnv(true)
	if err != nil {
		return err
	}
	events, console := c.stderr, c.stdout
	render := func(e devloop.Event) { fmt.Fprint(events, renderEvent(e)) }
	if f.jsonOut {
		events, console = c.stdout, c.stderr
		enc := json.NewEncoder(events)
		render = func(e devloop.Event) { _ = enc.Encode(e) }
	}
	limits, err := gc.LimitsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	err = devloop.Run(ctx, devloop.Options{
		File: path, Vars: vars, Target: target,
		Env: env, Registry: registry.Providers(), Catalog: registry.Catalog(), Jobs: c.jobs,
		Quiet: f.quiet, Drain: f.drain, Timeout: f.timeout,
		Exclude: []string{env.Cache.Dir(), env.StateDir},
		OnEvent: render, Console: console, CacheLimits: limits,
	})
	var ue *devloop.UnikfileError
	if errors.As(err, &ue) {
		fmt.Fprintln(c.stderr, ue.Text)
		return &reportedError{err: err}
	}
	if err == nil && ctx.Err() != nil && !f.jsonOut {
		fmt.Fprintln(c.stderr, "watch: stopped every VM it started")
	}
	return err
}

// renderEvent is an event as one line (an error's own lines indented).
func renderEvent(e devloop.Event) string {
	var b strings.Builder
	app := ""
	if e.App != "" {
		app = e.App + ": "
	}
	switch e.Kind {
	case devloop.EventWatching:
		fmt.Fprintf(&b, "watching %s (apps: %s); Ctrl-C stops", e.Message, strings.Join(e.Apps, ", "))
	case devloop.EventListening:
		fmt.Fprintf(&b, "%slistening on %s", app, e.URL)
	case devloop.EventChange:
		paths := e.Paths
		if len(paths) > 5 {
			paths = append(paths[:5:5], fmt.Sprintf("and %d more", len(e.Paths)-5))
		}
		fmt.Fprintf(&b, "change: %s", strings.Join(paths, ", "))
		if len(e.Apps) > 0 {
			fmt.Fprintf(&b, " (app %s)", strings.Join(e.Apps, ", "))
		}
	case devloop.EventReloaded:
		fmt.Fprintf(&b, "%s read again", filepath.Base(e.Message))
	case devloop.EventUnikfileError:
		fmt.Fprintf(&b, "Unikfile error; %s:\n%s", e.Message, indent(e.Error))
	case devloop.EventBuildStarted:
		fmt.Fprintf(&b, "%sbuild started", app)
	case devloop.EventBuildCancel:
		fmt.Fprintf(&b, "%sbuild cancelled after %s (%s)", app, round(e.Duration), e.Message)
	case devloop.EventBuildDone:
		fmt.Fprintf(&b, "%sbuild done in %s (image %s)", app, round(e.Duration), e.Image)
	case devloop.EventUnchanged:
		fmt.Fprintf(&b, "%sunchanged: image %s already serves as %s", app, e.Image, e.Instance)
	case devloop.EventBuildFailed:
		fmt.Fprintf(&b, "%sbuild failed after %s; %s:\n%s", app, round(e.Duration), e.Message, indent(e.Error))
	case devloop.EventBootStarted:
		fmt.Fprintf(&b, "%sbooting image %s as %s", app, e.Image, e.Instance)
	case devloop.EventBootFailed:
		fmt.Fprintf(&b, "%sboot failed after %s; %s:\n%s", app, round(e.Duration), e.Message, indent(e.Error))
	case devloop.EventSwapped:
		fmt.Fprintf(&b, "%sswapped: %s serves %s (%s since the build started, boot %s)", app, e.Instance, e.URL, round(e.Duration), round(e.Boot))
		if e.Replaced != "" {
			fmt.Fprintf(&b, "; stopping %s", e.Replaced)
		}
	case devloop.EventStopped:
		fmt.Fprintf(&b, "%sstopped %s", app, e.Instance)
		if e.Message != "" {
			fmt.Fprintf(&b, " (%s)", e.Message)
		}
	case devloop.EventRemoved:
		fmt.Fprintf(&b, "%s%s", app, e.Message)
	case devloop.EventNote:
		fmt.Fprintf(&b, "%s%s", app, e.Message)
	default:
		fmt.Fprintf(&b, "%serror: %s", app, e.Error)
	}
	b.WriteByte('\n')
	return b.String()
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

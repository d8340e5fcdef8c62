package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/address"
	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/internal/stamp"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/pipeline"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

func (c *cli) buildCommand() *cobra.Command {
	var jsonOut bool
	var format, boot string
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "build [ADDRESS...]",
		Short: "Compile and package apps into images (all apps by default)",
		Long: `build compiles and packages the apps the addresses name (every app of the
Unikfile by default), without a target. An address is a name in the current
Unikfile (an app, or a target whose apps are built), or DIR, DIR:NAME, DIR/...
and DIR/...:NAME for the Unikfiles in other folders: ./... builds every
Unikfile below, as one graph in which an app used by several targets is built
once.

By default the image is a kernel and an initramfs (format kernel+initrd, what
the qemu provider boots); --format makes a bootable disk instead, in one of
the formats hypervisors and clouds import: raw, qcow2, vmdk (streamOptimized),
vmdk-sparse (monolithicSparse), vhd (fixed), vdi, gce (disk.raw in a
tar.gz). --boot chooses the disk's firmware: bios (default) or uefi.`,
		Example: `  unikfile build                        # every app of ./Unikfile
  unikfile build hello                  # one app
  unikfile build ./...                  # every Unikfile here and below
  unikfile build ./...:prod -j 4 -k     # the apps of every prod target; keep going after a failure
  unikfile build ./... --changed-since origin/main
  unikfile build --format vmdk          # a BIOS-booting streamOptimized VMDK
  unikfile build --format qcow2 --boot uefi
  UNIKFILE_BUILDKIT_HOST=tcp://buildkit:1234 unikfile build   # compile on a remote buildkitd
  unikfile build --executor auto        # BuildKit if one answers at buildkit_host, else the local toolchain
  unikfile build --json | jq -r '.[0].digest'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pipeline.CheckFormat(format, boot); err != nil {
				return err
			}
			if boot != "" && format == pack.FormatKernelInitrd {
				return fmt.Errorf("--boot %s chooses a disk's firmware, and format %s boots the kernel directly; add --format (e.g. --format raw)", boot, format)
			}
			if err := rf.check(jsonOut); err != nil {
				return err
			}
			cs, err := c.openDigests()
			if err != nil {
				return err
			}
			inv, stamped := c.stampInvocation()
			stamped = stamped && rf.changedSince == ""
			if stamped {
				if replayed, err := c.replayStamp(cs, inv); replayed {
					return err
				}
				for _, f := range pipeline.ToolchainFiles(os.Environ()) {
					c.digests.Saw(f)
				}
			}
			ws, err := c.loadWorkspace(args)
			if err != nil {
				return err
			}
			apps, err := address.Apps(ws.w, ws.base, ws.mainDir, ws.addrs)
			if err != nil {
				return err
			}
			if rf.changedSince != "" {
				if apps, err = address.ChangedApps(cmd.Context(), ws.base, apps, rf.changedSince); err != nil {
					return err
				}
			}
			env, err := c.pipelineEnv(false)
			if err != nil {
				return err
			}
			if stamped {
				// What changed since the last identical build is built first.
				env.Changed = stamp.Changed(inv.Key())
			}
			start := time.Now()
			plan := pipeline.WorkspaceBuildGraph(ws.w, apps, env, format, boot)
			c.keepGoing = rf.keepGoing
			results, runErr := c.runGraph(cmd.Context(), plan.Graph)
			if results == nil {
				return runErr
			}
			multi := len(ws.w.Projects) > 1
			if err := c.summarize(&rf, multi, plan.Graph, results, time.Since(start)); err != nil {
				return err
			}
			out := []imageJSON{}
			for _, pa := range apps {
				r := results[plan.Images[pa.App]]
				if r == nil || r.Err != nil {
					continue
				}
				if img, ok := r.Output.(*pipeline.Image); ok && img != nil {
					i := newImageJSON(img.Image, img.Dir)
					if multi {
						i.Address = ws.w.Rel(pa.Project) + ":" + pa.App.Name
					}
					out = append(out, i)
				}
			}
			var stdout bytes.Buffer
			switch {
			case rf.summary == "json":
			case jsonOut:
				if err := writeJSON(&stdout, out); err != nil {
					return err
				}
			case len(apps) == 0 && rf.changedSince != "":
				fmt.Fprintf(&stdout, "Nothing to build: no selected app changed since %s.\n", rf.changedSince)
			default:
				for _, i := range out {
					name := i.App
					if i.Address != "" {
						name = i.Address
					}
					if i.File != "" {
						fmt.Fprintf(&stdout, "%s: image %s (%s, %s, kernel %s, %s)\n  %s\n", name, short(i.Digest), i.Format, i.Boot, i.Kernel, humanSize(i.Size), i.File)
						continue
					}
					fmt.Fprintf(&stdout, "%s: image %s (%s, kernel %s)\n  %s\n", name, short(i.Digest), i.Format, i.Kernel, i.Dir)
				}
			}
			if _, err := c.stdout.Write(stdout.Bytes()); err != nil {
				return err
			}
			if runErr == nil && stamped && rf.summary != "json" && pipeline.Stampable(apps, format, c.executor, os.Environ()) {
				for _, p := range ws.w.Projects {
					c.digests.Saw(p.File)
				}
				var dirs []string
				for _, i := range out {
					dirs = append(dirs, i.Dir)
				}
				c.writeStamp(cs, inv, &rf, plan.Graph, multi, stdout.String(), dirs)
			}
			return runErr
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the images as JSON")
	cmd.Flags().StringVar(&format, "format", pack.FormatKernelInitrd, "image format: kernel+initrd, raw, qcow2, vmdk, vmdk-sparse, vhd, vdi, gce")
	cmd.Flags().StringVar(&boot, "boot", "", "firmware of a disk format: bios (default) or uefi")
	rf.register(cmd)
	return cmd
}

type imageJSON struct {
	// Address is DIR:APP when several Unikfiles are loaded.
	Address string `json:"address,omitempty"`
	App     string `json:"app"`
	Digest  string `json:"digest"`
	Format  string `json:"format"`
	Kernel  string `json:"kernel"`
	Dir     string `json:"dir"`
	// Disk images only.
	Boot        string `json:"boot,omitempty"`
	File        string `json:"file,omitempty"` // the disk file's absolute path
	Size        int64  `json:"size,omitempty"`
	VirtualSize int64  `json:"virtual_size,omitempty"`
	Source      string `json:"source,omitempty"` // digest of the kernel+initrd image
}

func newImageJSON(img *pack.Image, dir string) imageJSON {
	j := imageJSON{App: img.App, Digest: img.Digest, Dir: dir, Kernel: img.KernelVersion, Format: img.Format,
		Boot: img.Boot, Size: img.Size, VirtualSize: img.VirtualSize, Source: img.Source}
	if img.Disk != "" {
		j.File = filepath.Join(dir, img.Disk)
	}
	return j
}

func (c *cli) pipelineEnv(withState bool) (*pipeline.Env, error) {
	cs, err := c.cacheStore()
	if err != nil {
		return nil, err
	}
	switch c.executor {
	case "", "local", "buildkit", "auto":
	default:
		return nil, fmt.Errorf("--executor %q: use local, buildkit or auto", c.executor)
	}
	if c.digests == nil {
		c.digests = cache.OpenStatCache(filepath.Join(cs.Dir(), "statcache"))
	}
	c.cache = cs
	env := &pipeline.Env{Cache: cs, ToolVersion: toolVersionFrom(c.digests), Digests: c.digests, Executor: c.executor}
	if withState {
		st, dir, err := c.stateStore()
		if err != nil {
			return nil, err
		}
		env.State, env.StateDir = st, dir
	}
	return env, nil
}

// runGraph runs g with progress on stderr. While it runs it holds the
// cache (no prune removes what it uses); after a successful run the
// cache's automatic limits apply.
func (c *cli) runGraph(ctx context.Context, g *graph.Graph) (map[string]*graph.Result, error) {
	release := func() {}
	if c.cache != nil {
		r, err := c.cache.Hold(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, &interruptedError{err: err}
			}
			return nil, err
		}
		release = r
	}
	pr := newProgress(c.stderr, isTerminal(c.stderr))
	results, err := g.Run(ctx, graph.Options{Jobs: c.jobs, KeepGoing: c.keepGoing, OnEvent: pr.Event})
	pr.Close()
	release()
	if err == nil && ctx.Err() == nil && c.cache != nil {
		c.autoPrune(ctx, c.cache)
	}
	if c.digests != nil {
		if serr := c.digests.Save(); serr != nil {
			fmt.Fprintf(c.stderr, "warning: %v\n", serr)
		}
	}
	if ctx.Err() != nil {
		return results, &interruptedError{err: ctx.Err()}
	}
	return results, err
}

func (c *cli) upCommand() *cobra.Command {
	var attach, jsonOut, watching bool
	var rf runFlags
	var timeout time.Duration
	var wf watchFlags
	cmd := &cobra.Command{
		Use:   "up [ADDRESS...]",
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
  unikfile up ./...:dev         # target dev of every Unikfile below
  unikfile up services/api:dev  # target dev of services/api/Unikfile
  unikfile up --watch         # stay, and serve each saved edit (see unikfile watch --help)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if watching {
				if attach || jsonOut || len(args) > 1 {
					return errors.New("--watch runs one target in the foreground like `unikfile watch`: it takes at most one TARGET and no --attach or --json")
				}
				return c.runWatch(cmd.Context(), strings.Join(args, ""), wf, timeout)
			}
			if err := rf.check(jsonOut); err != nil {
				return err
			}
			ws, err := c.loadWorkspace(args)
			if err != nil {
				return err
			}
			targets, err := address.Targets(ws.w, ws.base, ws.mainDir, ws.addrs)
			if err != nil {
				return err
			}
			if rf.changedSince != "" {
				if targets, err = address.ChangedTargets(cmd.Context(), ws.w, ws.base, targets, rf.changedSince); err != nil {
					return err
				}
				if len(targets) == 0 {
					fmt.Fprintf(c.stdout, "Nothing to bring up: no app of the selected targets changed since %s.\n", rf.changedSince)
					return nil
				}
			}
			env, err := c.pipelineEnv(true)
			if err != nil {
				return err
			}
			env.Timeout = timeout
			if attach {
				n := 0
				for _, pt := range targets {
					n += len(ws.w.TargetApps(pt.Project, pt.Target))
				}
				if n != 1 {
					return fmt.Errorf("--attach needs exactly one app to run, and the selected targets run %d; name one target with one app", n)
				}
				env.Attach = true
				env.Console = c.stdout
			}
			start := time.Now()
			plan := pipeline.WorkspaceUpGraph(ws.w, targets, env)
			c.keepGoing = rf.keepGoing
			results, err := c.runGraph(cmd.Context(), plan.Graph)
			var all []deploy.Result
			for _, pt := range targets {
				if r := results[plan.Deploys[pt.Target]]; r != nil {
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
			if results != nil && !attach {
				if serr := c.summarize(&rf, len(ws.w.Projects) > 1, plan.Graph, results, time.Since(start)); serr != nil {
					return serr
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
				if rf.summary == "json" {
					continue
				}
				where := urls(r.Instance)
				if r.Action == deploy.ActionRemoved {
					where = ""
				}
				fmt.Fprintf(c.stdout, "%s/%s: %s %s%s\n", r.Target, r.App, r.Action, r.Instance.ID, where)
			}
			if !changed && rf.summary != "json" {
				fmt.Fprintf(c.stdout, "Nothing changed; %d instance(s) up to date (%s).\n", len(all), round(time.Since(start)))
			}
			seen := map[*lang.Project]bool{}
			for _, pt := range targets {
				if !seen[pt.Project] {
					seen[pt.Project] = true
					c.warnUndeclaredTargets(pt.Project, env)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&attach, "attach", false, "stay in the foreground with the console; exit with the app's status")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait for each app to be ready (default: 2m under TCG emulation, 30s with KVM)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the instances as JSON")
	rf.register(cmd)
	cmd.Flags().BoolVar(&watching, "watch", false, "stay in the foreground and rebuild and swap apps as their files change (unikfile watch)")
	wf.add(cmd, false)
	return cmd
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
// Unikfile no longer declares.
func (c *cli) warnUndeclaredTargets(p *lang.Project, env *pipeline.Env) {
	stray, err := deploy.StrayTargets(env.State, p.Dir, func(t string) bool { return p.Target(t) != nil })
	if err != nil {
		return
	}
	for _, t := range stray {
		fmt.Fprintf(c.stderr, "note: target %q is no longer in %s but has running instances; stop them with `unikfile down %s`\n", t, p.File, t)
	}
}

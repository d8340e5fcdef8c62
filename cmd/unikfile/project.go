package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/address"
	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/registry"
	"github.com/unikfile/unikfile/state"
)

func (c *cli) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "init",
		Short:   "Write a starter Unikfile for the Go module in the project directory",
		Example: `  cd myservice && unikfile init && unikfile up`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(c.dir)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, "Unikfile")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s already exists; edit it, or remove it to start again", path)
			}
			modulePath, err := compile.GoModulePath(dir)
			if err != nil {
				return err
			}
			name := lang.NameFrom(filepath.Base(dir))
			hints := compile.GoListenPorts(dir)
			var ports []int
			for _, h := range hints {
				ports = append(ports, h.Port)
			}
			if err := os.WriteFile(path, lang.ScaffoldPorts(name, modulePath, ports), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Wrote %s (app %q, target \"dev\" on QEMU).\n", path, name)
			for _, h := range hints {
				fmt.Fprintf(c.stdout, "Port %d: %s at %s.\n", h.Port, h.How, lang.Visible(h.Pos))
			}
			if len(hints) == 0 {
				fmt.Fprintf(c.stderr, "note: port %d is a guess: no listen address (http.ListenAndServe(\":PORT\"), net.Listen, a PORT default) was found in the Go source; set ports in %s to the ports the app listens on\n", lang.DefaultScaffoldPort, path)
			}
			fmt.Fprintln(c.stdout, "Next: unikfile up")
			return nil
		},
	}
}

func (c *cli) validateCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "validate [ADDRESS...]",
		Short: "Check the Unikfile: syntax, types, references; builds nothing",
		Example: `  unikfile validate
  unikfile validate ./...      # every Unikfile below, and the references between them
  unikfile validate --json     # diagnostics with file, line and column`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !jsonOut {
				ws, err := c.loadWorkspace(args)
				if err != nil {
					return err
				}
				if _, err := address.Apps(ws.w, ws.base, ws.mainDir, ws.addrs); err != nil {
					return err
				}
				for _, p := range ws.w.Projects {
					fmt.Fprintf(c.stdout, "%s is valid: %d app(s), %d target(s).\n", p.File, len(p.Apps), len(p.Targets))
				}
				return nil
			}
			ws, _, diags, err := c.readWorkspace(args)
			if err != nil {
				return err
			}
			if ws.w != nil {
				if _, err := address.Apps(ws.w, ws.base, ws.mainDir, ws.addrs); err != nil {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Address matches nothing", Detail: err.Error()})
				}
			}
			out := struct {
				Valid       bool                  `json:"valid"`
				Diagnostics []lang.DiagnosticJSON `json:"diagnostics"`
			}{Valid: !diags.HasErrors(), Diagnostics: lang.DiagnosticsJSON(diags)}
			if out.Diagnostics == nil {
				out.Diagnostics = []lang.DiagnosticJSON{}
			}
			if err := writeJSON(c.stdout, out); err != nil {
				return err
			}
			if diags.HasErrors() {
				return &reportedError{err: diags}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print diagnostics as JSON")
	return cmd
}

func (c *cli) fmtCommand() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt [FILE...]",
		Short: "Rewrite Unikfiles in canonical style (-check: only report)",
		Example: `  unikfile fmt
  unikfile fmt -check          # in CI: exit 1 and list files that need formatting`,
		RunE: func(cmd *cobra.Command, args []string) error {
			files := args
			if len(files) == 0 {
				p, err := c.unikfilePath()
				if err != nil {
					return err
				}
				files = []string{p}
			}
			var unformatted []string
			var failed []error
			for _, f := range files {
				// Every file gets its turn: one that fails is reported and
				// the others are still formatted.
				changed, err := c.formatFile(f, check)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				if changed {
					unformatted = append(unformatted, f)
					fmt.Fprintln(c.stdout, lang.Visible(f))
				}
			}
			switch {
			case len(failed) > 0:
				return &reportedError{err: errors.Join(failed...)}
			case check && len(unformatted) > 0:
				return &reportedError{err: errors.New("files need formatting")}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "do not write; exit 1 if a file is not formatted")
	return cmd
}

// formatFile formats one Unikfile (unless check), reporting on stderr why
// it cannot; changed says it was (or, with check, would be) rewritten.
func (c *cli) formatFile(f string, check bool) (changed bool, err error) {
	src, err := lang.ReadFile(f)
	if err != nil {
		fmt.Fprintf(c.stderr, "Error: %s\n", lang.Visible(err.Error()))
		return false, err
	}
	out, diags := lang.Format(src, f)
	if diags.HasErrors() {
		lang.WriteDiagnostics(c.stderr, diags, lang.SourcesOf(f, src), isTerminal(c.stderr))
		return false, diags
	}
	if bytes.Equal(src, out) {
		return false, nil
	}
	if !check {
		if err := atomicfile.Rewrite(f, out); err != nil {
			fmt.Fprintf(c.stderr, "Error: %s: %s\n", lang.Visible(f), lang.Visible(err.Error()))
			return false, err
		}
	}
	return true, nil
}

func (c *cli) imagesCommand() *cobra.Command {
	var jsonOut bool
	var target string
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images in the cache, or those a target's provider keeps",
		Long: `List the images in the cache: app, digest, format, size, and the
instances that use each.

With --target NAME, list instead the images the target's provider keeps of
its own that unikfile made (AMIs on aws, in the target's region), in use or
not, with the digest each was made from.`,
		Example: `  unikfile images
  unikfile images --json
  unikfile images --target prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if target != "" {
				return c.remoteImages(cmd.Context(), target, jsonOut)
			}
			cs, err := c.cacheStore()
			if err != nil {
				return err
			}
			entries, err := pack.Images(cs)
			if err != nil {
				return err
			}
			inUse := map[string][]string{}
			if st, _, err := c.stateStore(); err == nil {
				if insts, err := st.List(state.Filter{}); err == nil {
					for _, i := range insts {
						if i.Alive() {
							inUse[i.ImageDigest] = append(inUse[i.ImageDigest], i.ID)
						}
					}
				}
			}
			type row struct {
				App       string    `json:"app"`
				Digest    string    `json:"digest"`
				Format    string    `json:"format"`
				Kernel    string    `json:"kernel"`
				Size      int64     `json:"size"`
				Created   time.Time `json:"created"`
				Dir       string    `json:"dir"`
				Instances []string  `json:"instances"`
				// Disk images only: the firmware, the disk file, the
				// size the guest sees, the kernel+initrd image it holds.
				Boot        string `json:"boot,omitempty"`
				File        string `json:"file,omitempty"`
				VirtualSize int64  `json:"virtual_size,omitempty"`
				Source      string `json:"source,omitempty"`
			}
			var rows []row
			for _, e := range entries {
				img, dir := e.Image, e.Dir
				r := row{App: img.App, Digest: img.Digest, Format: img.Format, Kernel: img.KernelVersion,
					Size: e.Size, Created: e.Created, Dir: dir, Instances: inUse[img.Digest]}
				if img.Disk != "" {
					r.Boot, r.File, r.Size, r.VirtualSize, r.Source = img.Boot, filepath.Join(dir, img.Disk), img.Size, img.VirtualSize, img.Source
				}
				rows = append(rows, r)
			}
			if jsonOut {
				if rows == nil {
					rows = []row{}
				}
				return writeJSON(c.stdout, rows)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tDIGEST\tFORMAT\tBOOT\tKERNEL\tSIZE\tCREATED\tIN USE BY")
			for _, r := range rows {
				use := strings.Join(r.Instances, ",")
				if use == "" {
					use = "-"
				}
				boot := r.Boot
				if boot == "" {
					boot = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s ago\t%s\n", r.App, short(r.Digest), r.Format, boot, r.Kernel, humanSize(r.Size), time.Since(r.Created).Round(time.Second), use)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.Flags().StringVar(&target, "target", "", "list the images the provider of this target of the Unikfile keeps")
	cmd.AddCommand(c.pruneCommand())
	return cmd
}

// remoteImages lists the images the provider of the current Unikfile's
// target keeps of its own.
func (c *cli) remoteImages(ctx context.Context, name string, jsonOut bool) error {
	ws, err := c.loadWorkspace(nil)
	if err != nil {
		return err
	}
	var t *lang.Target
	for _, p := range ws.w.Projects {
		if p.Dir == ws.mainDir {
			t = p.Target(name)
		}
	}
	if t == nil {
		return fmt.Errorf("the Unikfile in %s has no target %q; unikfile graph lists its targets", ws.mainDir, name)
	}
	_, dir, err := c.stateStore()
	if err != nil {
		return err
	}
	prov, err := registry.Providers().New(t.Provider, deploy.Env{StateDir: dir})
	if err != nil {
		return err
	}
	lister, ok := prov.(deploy.ImageLister)
	if !ok {
		return fmt.Errorf("target %s: provider %q keeps no images of its own (it boots the cache's images: unikfile images lists them)", name, t.Provider)
	}
	imgs, err := lister.Images(ctx, t)
	if err != nil {
		return fmt.Errorf("target %s: %w", name, err)
	}
	if jsonOut {
		if imgs == nil {
			imgs = []deploy.RemoteImage{}
		}
		return writeJSON(c.stdout, imgs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIGEST\tAPP\tSTATE\tWHERE\tCREATED")
	for _, r := range imgs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", r.ID, short(r.Digest), r.App, r.State, r.Where, time.Since(r.Created).Round(time.Second))
	}
	return tw.Flush()
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print unikfile's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(c.stdout, "unikfile %s (%s, %s/%s)\n", version, toolVersion(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

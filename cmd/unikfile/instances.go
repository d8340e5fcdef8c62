package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/providers"
	"github.com/unikfile/unikfile/state"
)

// projectDir returns the project's directory, without loading the Unikfile
// (ps, logs and down must work even when the Unikfile is broken).
func (c *cli) projectDir() (string, error) {
	path, err := c.unikfileLocation()
	if err != nil {
		return "", err
	}
	return filepath.Dir(path), nil
}

func (c *cli) psCommand() *cobra.Command {
	var all, jsonOut bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the instances of this project (-a: of every project)",
		Example: `  unikfile ps
  unikfile ps -a
  unikfile ps --json | jq -r '.[] | select(.state=="running") | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			f := state.Filter{}
			if !all {
				if f.Project, err = c.projectDir(); err != nil {
					return err
				}
			}
			insts, err := deploy.List(cmd.Context(), st, providers.Registry(), f)
			if err != nil {
				return err
			}
			if jsonOut {
				if insts == nil {
					insts = []*state.Instance{}
				}
				return writeJSON(c.stdout, insts)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INSTANCE\tTARGET\tAPP\tIMAGE\tSTATE\tPORTS\tUPTIME")
			for _, i := range insts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, i.Target, i.App, short(i.ImageDigest), stateText(i), portsText(i), uptime(i))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "instances of every project")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON, including each instance's full QEMU configuration")
	return cmd
}

func stateText(i *state.Instance) string {
	if i.State == state.Exited && i.ExitStatus != nil {
		return fmt.Sprintf("exited (%d)", *i.ExitStatus)
	}
	return i.State
}

func portsText(i *state.Instance) string {
	var p []string
	for _, port := range i.Ports {
		p = append(p, fmt.Sprintf("%s:%d->%d", port.Bind, port.Host, port.Guest))
	}
	if len(p) == 0 {
		return "-"
	}
	return strings.Join(p, ",")
}

func uptime(i *state.Instance) string {
	if i.State != state.Running || i.Started.IsZero() {
		return "-"
	}
	return time.Since(i.Started).Round(time.Second).String()
}

// findInstance resolves an app name or instance ID within the project.
func (c *cli) findInstance(cmd *cobra.Command, st *state.Store, ref string) (*state.Instance, error) {
	if inst, err := st.Get(ref); err == nil && inst != nil {
		return inst, nil
	}
	dir, err := c.projectDir()
	if err != nil {
		return nil, err
	}
	insts, err := deploy.List(cmd.Context(), st, providers.Registry(), state.Filter{Project: dir, App: ref})
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("no instance of app %q in %s (and no instance with that ID); see `unikfile ps`", ref, dir)
	}
	// The newest instance of the app; a running one wins.
	best := insts[len(insts)-1]
	for _, i := range insts {
		if i.State == state.Running {
			best = i
		}
	}
	return best, nil
}

func (c *cli) logsCommand() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs APP|INSTANCE",
		Short: "Print an instance's serial console",
		Example: `  unikfile logs hello
  unikfile logs -f hello       # follow until the instance stops or Ctrl-C`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			inst, err := c.findInstance(cmd, st, args[0])
			if err != nil {
				return err
			}
			err = deploy.Logs(cmd.Context(), st, providers.Registry(), inst, follow, c.stdout)
			if cmd.Context().Err() != nil {
				return nil // Ctrl-C ends a follow
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new console output")
	return cmd
}

func (c *cli) downCommand() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "down [TARGET]",
		Short: "Stop and remove this project's instances (of one target, or all)",
		Example: `  unikfile down
  unikfile down dev`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			dir, err := c.projectDir()
			if err != nil {
				return err
			}
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			results, err := deploy.Down(cmd.Context(), st, providers.Registry(), dir, target)
			if jsonOut {
				if werr := writeJSON(c.stdout, results); werr != nil {
					return werr
				}
			} else {
				for _, r := range results {
					fmt.Fprintf(c.stdout, "%s/%s: %s %s\n", r.Instance.Target, r.Instance.App, r.Action, r.Instance.ID)
				}
				if len(results) == 0 && err == nil {
					fmt.Fprintf(c.stdout, "No instances of %s.\n", dir)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print what was removed as JSON")
	return cmd
}

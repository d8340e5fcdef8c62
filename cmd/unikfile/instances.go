package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/address"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/registry"
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
		Use:   "ps [ADDRESS...]",
		Short: "List the instances of this project (-a: of every project; addresses: of those)",
		Example: `  unikfile ps
  unikfile ps -a
  unikfile ps ./...              # every project here and below
  unikfile ps services/api:dev   # target (or app) dev of services/api
  unikfile ps --json | jq -r '.[] | select(.state=="running") | .id'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			f := state.Filter{}
			if !all && len(args) == 0 {
				if f.Project, err = c.projectDir(); err != nil {
					return err
				}
			}
			insts, err := deploy.List(cmd.Context(), st, registry.Providers(), f)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				if insts, err = c.instancesAt(args, insts); err != nil {
					return err
				}
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
	dir, err := c.projectDir()
	if err != nil {
		return nil, err
	}
	return deploy.Find(cmd.Context(), st, registry.Providers(), dir, ref)
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
			err = deploy.Logs(cmd.Context(), st, registry.Providers(), inst, follow, c.stdout)
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
		Use:   "down [TARGET | ADDRESS...]",
		Short: "Stop and remove this project's instances (of one target, or all)",
		Example: `  unikfile down
  unikfile down dev
  unikfile down ./...             # every project here and below
  unikfile down ./...:dev         # target dev of every project below`,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			dir, err := c.projectDir()
			if err != nil {
				return err
			}
			addrs, err := address.ParseAll(args)
			if err != nil {
				return err
			}
			if address.IsWorkspace(addrs) {
				return c.downAt(cmd, st, dir, addrs, jsonOut)
			}
			if len(args) > 1 {
				return fmt.Errorf("down takes one target name, or addresses (DIR:TARGET, ./...)")
			}
			target := ""
			if len(args) == 1 {
				target = addrs[0].Name
			}
			results, err := deploy.Down(cmd.Context(), st, registry.Providers(), dir, target)
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

// instancesAt keeps the instances the addresses name.
func (c *cli) instancesAt(args []string, insts []*state.Instance) ([]*state.Instance, error) {
	addrs, err := address.ParseAll(args)
	if err != nil {
		return nil, err
	}
	dir, err := c.projectDir()
	if err != nil {
		return nil, err
	}
	return address.Instances(addrs, dir, insts), nil
}

// downAt stops the instances of the targets the addresses name, project
// by project, from the instance records (the Unikfiles are not read).
func (c *cli) downAt(cmd *cobra.Command, st *state.Store, base string, addrs []address.Address, jsonOut bool) error {
	insts, err := st.List(state.Filter{})
	if err != nil {
		return err
	}
	var all []deploy.Result
	var errs []error
	for _, j := range address.TargetsOf(addrs, base, insts) {
		res, err := deploy.Down(cmd.Context(), st, registry.Providers(), j.Project, j.Target)
		all = append(all, res...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if jsonOut {
		if all == nil {
			all = []deploy.Result{}
		}
		if err := writeJSON(c.stdout, all); err != nil {
			return err
		}
	} else {
		for _, r := range all {
			fmt.Fprintf(c.stdout, "%s/%s: %s %s\n", r.Instance.Target, r.Instance.App, r.Action, r.Instance.ID)
		}
		if len(all) == 0 && len(errs) == 0 {
			fmt.Fprintf(c.stdout, "No instances match %s.\n", addrList(addrs))
		}
	}
	return errors.Join(errs...)
}

func addrList(addrs []address.Address) string {
	var s []string
	for _, a := range addrs {
		s = append(s, a.Raw)
	}
	return strings.Join(s, " ")
}

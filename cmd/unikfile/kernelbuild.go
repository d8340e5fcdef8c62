package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/address"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/pipeline"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

func (c *cli) kernelBuildCommand() *cobra.Command {
	var languages []string
	var format, boot string
	cmd := &cobra.Command{
		Use:   "build [ADDRESS...]",
		Short: "Build ahead the minimal kernels that apps need (linux { kernel = \"minimal\" })",
		Long: `build compiles the kernels that build and up would compile for the apps of
the targets the addresses name (every target of the Unikfile by default), as
if each app set linux { kernel = "minimal" } (apps that name a kernel file
are left out). With --language it builds the kernel of an app in that
language without a Unikfile, for --format and --boot.

A kernel is built from Debian's linux-source-6.1 (downloaded with apt-get
download and unpacked into the cache the first time), configured from
tinyconfig with what the app's language and the target's platform need, all
drivers built in. Kernels are cached by their configuration's digest and
shared by every app with the same needs; a changed configuration recompiles
only what it changes, in the same object tree. A first build takes minutes
on two cores (make runs niced); Ctrl-C stops it.`,
		Example: `  unikfile kernel build                      # the kernels of this Unikfile's targets
  unikfile kernel build ./...:dev
  unikfile kernel build --language go        # a Go app booted directly on QEMU's microvm
  unikfile kernel build --language python --format qcow2 --boot uefi`,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := c.pipelineEnv(false)
			if err != nil {
				return err
			}
			var g *graph.Graph
			if len(languages) > 0 {
				if len(args) > 0 {
					return fmt.Errorf("--language builds without a Unikfile: give either addresses or --language")
				}
				if format == "" {
					format = "kernel+initrd"
				}
				if err := pipeline.CheckFormat(format, boot); err != nil {
					return err
				}
				g = graph.New()
				for _, l := range languages {
					for _, n := range pipeline.LanguageKernelGraph(l, format, boot, env).Nodes() {
						g.Add(n)
					}
				}
			} else {
				if format != "" || boot != "" {
					return fmt.Errorf("--format and --boot go with --language; with addresses, each target's format and boot count")
				}
				ws, err := c.loadWorkspace(args)
				if err != nil {
					return err
				}
				targets, err := address.Targets(ws.w, ws.base, ws.mainDir, ws.addrs)
				if err != nil {
					return err
				}
				env.MinimalByDefault()
				g = pipeline.PreparedGraph(pipeline.WorkspaceUpGraph(ws.w, targets, env))
				if len(g.Nodes()) == 0 {
					fmt.Fprintln(c.stderr, "No app of these targets boots a minimal kernel: every one names its kernel file (linux { kernel = \"...\" }).")
					return nil
				}
			}
			results, err := c.runGraph(cmd.Context(), g)
			for _, n := range g.Nodes() {
				if r := results[n.ID]; r != nil && r.Err == nil {
					if k, ok := r.Output.(*kbuild.Kernel); ok && k != nil {
						fmt.Fprintln(c.stdout, k.Path())
					}
				}
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&languages, "language", nil, "build the kernel of an app in this language (go, c, cpp, rust, python, node, java, elf), without a Unikfile; repeatable")
	cmd.Flags().StringVar(&format, "format", "", "with --language: the image format it boots from (default kernel+initrd)")
	cmd.Flags().StringVar(&boot, "boot", "", "with --language and a disk --format: bios (default) or uefi")
	return cmd
}

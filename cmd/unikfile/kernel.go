package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
	"github.com/unikfile/unikfile/stages/package/osv"
	"github.com/unikfile/unikfile/stages/registry"
)

func (c *cli) kernelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Manage the kernels in the cache (what the linux and osv bases boot)",
	}
	var pkg, base string
	fetch := &cobra.Command{
		Use:   "fetch",
		Short: "Download Debian's cloud kernel (or another base's kernel) into the cache",
		Long: `fetch downloads a Debian kernel package with apt-get download (checked
against the archive's signed index) and extracts its kernel and modules
into the cache's kernels folder. Nothing is installed into /boot. It needs
apt with Debian's archive; elsewhere, point UNIKFILE_KERNEL at a vmlinuz.

With --base osv it downloads an OSv release pinned by digest into
kernels/osv/; when this version pins none it says how to build the kernel
and point UNIKFILE_OSV_KERNEL at it.`,
		Example: `  unikfile kernel fetch
  unikfile kernel fetch --package linux-image-6.1.0-56-cloud-amd64
  unikfile kernel fetch --base osv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := c.cacheStore()
			if err != nil {
				return err
			}
			say := func(msg string) { fmt.Fprintln(c.stderr, msg) }
			if base != linux.Name {
				kf, ok := registry.Base(base).(pack.KernelFetcher)
				if !ok {
					return fmt.Errorf("base %q has no kernel for unikfile to fetch (bases with one: %s, %s)", base, linux.Name, osv.Name)
				}
				where, err := kf.FetchKernel(cmd.Context(), cs.Dir(), say)
				if err != nil {
					if cmd.Context().Err() != nil {
						return &interruptedError{err: err}
					}
					return err
				}
				fmt.Fprintln(c.stdout, where)
				return nil
			}
			k, err := linux.FetchKernel(cmd.Context(), cs.Dir(), pkg, say)
			if err != nil {
				if cmd.Context().Err() != nil {
					return &interruptedError{err: err}
				}
				return err
			}
			fmt.Fprintln(c.stdout, k.Path)
			return nil
		},
	}
	fetch.Flags().StringVar(&pkg, "package", linux.DefaultKernelPackage, "Debian package to fetch (a meta package or a versioned one)")
	fetch.Flags().StringVar(&base, "base", linux.Name, "the base whose kernel to fetch: linux or osv")
	var jsonOut bool
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List the kernels in the cache, the one builds use first",
		Example: `  unikfile kernel ls`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := c.cacheStore()
			if err != nil {
				return err
			}
			if base == osv.Name {
				return c.osvKernels(cs.Dir(), jsonOut)
			}
			if base != linux.Name {
				return fmt.Errorf("base %q keeps no kernels in the cache (bases that do: %s, %s)", base, linux.Name, osv.Name)
			}
			ks, err := linux.CachedKernels(cs.Dir())
			if err != nil {
				return err
			}
			built, err := kbuild.List(kbuild.Dir(cs.Dir(), os.Environ()))
			if err != nil {
				return err
			}
			if jsonOut {
				// One list: Debian's kernels ("fetched"), then the
				// kernels built for apps ("minimal", with their features).
				type entry struct {
					Kind string
					*linux.Kernel
					Features []string `json:",omitempty"`
				}
				out := []entry{}
				for _, k := range ks {
					out = append(out, entry{Kind: "fetched", Kernel: k})
				}
				for _, k := range built {
					out = append(out, entry{Kind: "minimal", Kernel: linux.BuiltKernel(k), Features: k.Features})
				}
				return writeJSON(c.stdout, out)
			}
			if env := os.Getenv(linux.KernelEnv); env != "" {
				fmt.Fprintf(c.stderr, "note: %s=%s is set and wins over the cache\n", linux.KernelEnv, env)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tKIND\tMODULES\tSIZE\tPATH")
			for _, k := range ks {
				mods := "yes"
				if k.ModulesDir == "" {
					mods = "no"
				}
				size := "-"
				if fi, err := os.Stat(k.Path); err == nil {
					size = fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Version, "fetched", mods, size, k.Path)
			}
			for _, k := range built {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f MiB\t%s\n", k.Release, "minimal ("+strings.Join(kbuild.Distinctive(kbuild.Needs{Features: k.Features}), " ")+")", "built in", float64(k.Size)/(1<<20), k.Path())
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	ls.Flags().StringVar(&base, "base", linux.Name, "the base whose kernels to list: linux or osv")
	cmd.AddCommand(fetch, ls, c.kernelBuildCommand(), c.kernelPruneCommand())
	return cmd
}

// osvKernels lists the OSv kernels in the cache.
func (c *cli) osvKernels(cacheDir string, jsonOut bool) error {
	ks, err := osv.CachedKernels(cacheDir)
	if err != nil {
		return err
	}
	if jsonOut {
		if ks == nil {
			ks = []*osv.Kernel{}
		}
		return writeJSON(c.stdout, ks)
	}
	if env := os.Getenv(osv.KernelEnv); env != "" {
		fmt.Fprintf(c.stderr, "note: %s=%s is set and wins over the cache\n", osv.KernelEnv, env)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tBIOS DISKS\tPATH")
	for _, k := range ks {
		bios := "yes"
		if k.Boot == "" {
			bios = "no (no loader.img)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Version, bios, filepath.Dir(k.Loader))
	}
	return tw.Flush()
}

package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/cache/gc"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

func (c *cli) kernelPruneCommand() *cobra.Command {
	var all, dryRun, jsonOut bool
	var olderThan string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove built kernels, kernel sources and object trees that nothing needs",
		Long: `prune removes from the kbuild folder (<cache>/kbuild, or
$UNIKFILE_KBUILD_DIR) what the minimal kernels leave behind:

  - the built kernels that no newest build of an app uses: it keeps the
    kernel of each image ` + "`images prune`" + ` keeps (the newest image of each app,
    those instances use, those build stamps name) and the kernels build
    stamps name, so an unchanged app's next build is still a cache hit;
  - every source version but the newest (1.5 GiB each) with its object
    trees: builds only ever compile the newest;
  - the object trees of the newest version (130-250 MiB each, one per
    machine family: microvm, pc) from which no kernel that stays was
    built.

Running instances do not need the kernels here: an image holds a copy of
its kernel and QEMU boots that copy. prune still keeps the kernels of the
images instances use, so that up of the same app does not compile again.

--all also removes the newest source and its trees, and every kernel but
those of the images instances use: the next minimal build downloads the
source (140 MB) and compiles from scratch (minutes). --older-than spares
what was used within it: a kernel's last lookup or build, a tree's last
compile, a source's last compile in one of its trees.

prune waits for the builds of this cache and for kernel builds (a build
holds the cache and the kbuild folder while it uses them; Ctrl-C ends the
wait). A tree that an older unikfile's build is compiling in stays, with
its source; prune says so. Each removal is one rename out of the way,
then the deletion: a prune killed in the middle leaves a folder in
<kbuild>/tmp that the next prune sweeps, never a half-deleted source or
kernel that a build would trust. The folders it sweeps are removed even
with --dry-run (any command that opens the folder removes them).

The kbuild folder may be shared by several caches ($UNIKFILE_KBUILD_DIR);
prune knows only the images of its own cache, so there use --older-than.
Debian's kernels (unikfile kernel fetch, <cache>/kernels) are not touched.

Exit status: 0 when the prune ran (even if it removed nothing or left a
busy tree); 1 when it could not (a bad flag, an unreadable cache, state
store or kbuild folder, a removal that failed); 130 when interrupted.`,
		Example: `  unikfile kernel prune --dry-run        # what would go, with sizes
  unikfile kernel prune                  # old sources and trees, kernels no newest build uses
  unikfile kernel prune --older-than 30d # only what was not used for a month
  unikfile kernel prune --all            # everything but what instances' images were built with
  unikfile kernel prune --json | jq .freed_bytes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := kbuild.PruneOptions{All: all, DryRun: dryRun, Wait: true}
			if olderThan != "" {
				d, err := gc.ParseAge(olderThan)
				if err != nil {
					return fmt.Errorf("--older-than: %w", err)
				}
				opts.OlderThan = d
			}
			cs, err := c.openDigests()
			if err != nil {
				return err
			}
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			root := kbuild.Dir(cs.Dir(), os.Environ())
			interrupted := func(err error) error {
				if ctx.Err() != nil {
					return &interruptedError{err: err}
				}
				return err
			}
			// No build of this cache may be between its kernel and its
			// image while the prune decides: it holds the cache as
			// images prune does.
			release, _, err := cs.Lock(ctx, true, func() {
				fmt.Fprintln(c.stderr, "waiting for the builds that use the cache to finish (Ctrl-C to give up)")
			})
			if err != nil {
				return interrupted(err)
			}
			defer release()
			roots, err := gc.KernelsKept(cs, st, all, c.digests.FileDigest)
			if err != nil {
				return err
			}
			opts.KeepDigests, opts.KeepPaths = roots.Digests, roots.Paths
			opts.Waiting = func() {
				fmt.Fprintf(c.stderr, "waiting for the kernel builds in %s to finish (Ctrl-C to give up)\n", root)
			}
			res, err := kbuild.Prune(ctx, root, opts)
			if serr := c.digests.Save(); serr != nil {
				fmt.Fprintf(c.stderr, "warning: %v\n", serr)
			}
			if err != nil && ctx.Err() != nil {
				return interrupted(err)
			}
			if jsonOut {
				if jerr := writeJSON(c.stdout, res); jerr != nil {
					return jerr
				}
				return err
			}
			c.printKernelPrune(res)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "also remove the newest source and its trees, and every kernel but those instances' images were built with")
	f.StringVar(&olderThan, "older-than", "", "remove only what was not used for this long (72h, 30d)")
	f.BoolVar(&dryRun, "dry-run", false, "remove nothing; list what would be removed, with sizes")
	f.BoolVar(&jsonOut, "json", false, "print what was removed as JSON")
	return cmd
}

func (c *cli) printKernelPrune(res kbuild.PruneResult) {
	verb := "Removed"
	if res.DryRun {
		verb = "Would remove"
	}
	for _, s := range res.Swept {
		fmt.Fprintf(c.stdout, "Swept %s (%s), left by an interrupted prune or build.\n", s.Dir, humanSize(s.Size))
	}
	if len(res.Kernels) > 0 {
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KERNEL\tRELEASE\tFEATURES\tSOURCE\tSIZE\tLAST USED")
		for _, k := range res.Kernels {
			feats := strings.Join(kbuild.Distinctive(kbuild.Needs{Features: k.Features}), " ")
			if feats == "" {
				feats = "-"
			}
			src := strings.TrimPrefix(k.Source, kbuild.SourcePackage+" ")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", short(k.Key), orDash(k.Release), feats, orDash(src), humanSize(k.Size), ago(k.Used))
		}
		tw.Flush()
	}
	if len(res.Sources) > 0 || len(res.Trees) > 0 {
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tTREE\tSIZE\tLAST USED\tPATH")
		for _, s := range res.Sources {
			size := humanSize(s.Size)
			if s.Link != "" {
				size = "link to " + s.Link
			}
			fmt.Fprintf(tw, "%s\t-\t%s\t%s ago\t%s\n", s.Version, size, ago(s.Used), s.Dir)
		}
		for _, t := range res.Trees {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", t.Version, t.Family, humanSize(t.Size), ago(t.Used), t.Dir)
		}
		tw.Flush()
	}
	for _, b := range res.Busy {
		fmt.Fprintf(c.stdout, "Left %s and the rest of source %s: %s (run kernel prune again when it is done).\n", b.Dir, b.Version, b.Reason)
	}
	if res.Skipped {
		fmt.Fprintln(c.stdout, "Kernel builds were running: nothing was looked at.")
		return
	}
	fmt.Fprintln(c.stdout, kernelPruneSummary(res, verb))
}

// kernelPruneSummary is the prune's last line: "Removed 3 kernels (12.1
// MiB), source 6.1.190-1 and its 2 object trees (1.8 GiB); kept ...".
func kernelPruneSummary(res kbuild.PruneResult, verb string) string {
	var parts []string
	if n := len(res.Kernels); n > 0 {
		var size int64
		for _, k := range res.Kernels {
			size += k.Size
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", plural(n, "kernel"), humanSize(size)))
	}
	treesOf := map[string][]kbuild.PrunedDir{}
	for _, t := range res.Trees {
		treesOf[t.Version] = append(treesOf[t.Version], t)
	}
	for _, s := range res.Sources {
		size := s.Size
		for _, t := range treesOf[s.Version] {
			size += t.Size
		}
		what := "source " + s.Version
		if n := len(treesOf[s.Version]); n > 0 {
			what += " and its " + plural(n, "object tree")
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", what, humanSize(size)))
		delete(treesOf, s.Version)
	}
	for _, t := range res.Trees {
		ts, ok := treesOf[t.Version]
		if !ok {
			continue
		}
		var size int64
		var fams []string
		for _, x := range ts {
			size += x.Size
			fams = append(fams, x.Family)
		}
		parts = append(parts, fmt.Sprintf("the %s %s of source %s (%s)", strings.Join(fams, " and "), pluralWord(len(ts), "object tree"), t.Version, humanSize(size)))
		delete(treesOf, t.Version)
	}
	line := "Nothing to remove"
	if len(parts) > 0 {
		line = verb + " " + strings.Join(parts, ", ")
	}
	kept := plural(res.KeptKernels, "kernel")
	if res.Protected > 0 {
		kept += fmt.Sprintf(" (%d that the newest builds or instances' images use)", res.Protected)
	}
	if n := len(res.KeptSources); n > 0 {
		kept += ", " + pluralWord(n, "source") + " " + strings.Join(res.KeptSources, ", ")
	} else {
		kept += ", no source"
	}
	kept += " and " + plural(res.KeptTrees, "object tree")
	return fmt.Sprintf("%s; kept %s; the kbuild folder holds %s.", line, kept, humanSize(res.Size))
}

func plural(n int, word string) string {
	return fmt.Sprintf("%d %s", n, pluralWord(n, word))
}

func pluralWord(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// ago is how long ago t was: seconds, minutes, hours, and days beyond two.
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

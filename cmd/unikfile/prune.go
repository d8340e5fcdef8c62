package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/cache/gc"
)

func (c *cli) pruneCommand() *cobra.Command {
	var opts gc.Options
	var olderThan, keepSize string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove cached images, bundles and disks that nothing needs",
		Long: `prune removes from the cache what no instance uses and what is not the
newest build of an app: older images of each app (by app, format and boot
mode), the bundles and disks only they were made from, and what builds
made that nothing keeps. It never removes an image an instance of the
state store uses (whatever its state), nor what that image was made from.
Unless --all, it keeps the newest image of each app, what it was made from
(its bundle, the guest init, the kernel+initrd image of a disk) and what a
build stamp names, so the next build of an unchanged app is still a cache
hit. It removes no kernel: Debian's (unikfile kernel fetch) stay, and the
minimal kernels unikfile builds, with their sources and object trees, are
in the kbuild folder, which unikfile kernel prune prunes.

--older-than and --keep-size limit the prune as BuildKit's garbage
collection does: only entries unused for that long go, and least recently
used entries go first until the cache takes at most that much.

prune waits for builds that run at the same time (a build holds the cache
while it uses it; Ctrl-C ends the wait). After every build and up, the
same rules run by themselves when the cache is larger than
$UNIKFILE_CACHE_MAX_SIZE (default 10GiB, "off" to disable), at most once
an hour; $UNIKFILE_CACHE_MAX_AGE (e.g. 30d; default off) also removes
what was not used for that long.

Exit status: 0 when the prune ran (even if it removed nothing); 1 when it
could not (a bad flag, an unreadable cache or state store); 130 when
interrupted.`,
		Example: `  unikfile images prune --dry-run        # what would go
  unikfile images prune                  # keep the newest build of each app and what runs
  unikfile images prune --all            # keep only what instances use
  unikfile images prune --older-than 7d  # only what was not used for a week
  unikfile images prune --keep-size 5GiB # least recently used first, down to 5 GiB
  unikfile images prune --json | jq .freed_bytes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if olderThan != "" {
				if opts.OlderThan, err = gc.ParseAge(olderThan); err != nil {
					return fmt.Errorf("--older-than: %w", err)
				}
			}
			if keepSize != "" {
				if opts.KeepSize, err = gc.ParseSize(keepSize); err != nil {
					return fmt.Errorf("--keep-size: %w", err)
				}
			}
			cs, err := c.cacheStore()
			if err != nil {
				return err
			}
			st, _, err := c.stateStore()
			if err != nil {
				return err
			}
			opts.Wait = true
			opts.Waiting = func() {
				fmt.Fprintln(c.stderr, "waiting for the builds that use the cache to finish (Ctrl-C to give up)")
			}
			res, err := gc.Prune(cmd.Context(), cs, st, opts)
			if err != nil {
				if cmd.Context().Err() != nil {
					return &interruptedError{err: err}
				}
				return err
			}
			if jsonOut {
				return writeJSON(c.stdout, res)
			}
			c.printPrune(res)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.All, "all", false, "also remove the newest build of each app (keep only what instances use)")
	f.StringVar(&olderThan, "older-than", "", "remove only what was not used for this long (72h, 7d)")
	f.StringVar(&keepSize, "keep-size", "", "remove least recently used first, until the cache takes at most this (5GiB)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "remove nothing; list what would be removed")
	f.BoolVar(&jsonOut, "json", false, "print what was removed as JSON")
	return cmd
}

func (c *cli) printPrune(res gc.Result) {
	verb := "Removed"
	if res.DryRun {
		verb = "Would remove"
	}
	if len(res.Removed) > 0 {
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tKEY\tAPP\tFORMAT\tSIZE\tLAST USED")
		for _, r := range res.Removed {
			app, format := r.App, r.Format
			if app == "" {
				app = "-"
			}
			if format == "" {
				format = "-"
			}
			if r.Boot != "" {
				format += " (" + r.Boot + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s ago\n", r.Kind, short(r.Key), app, format, humanSize(r.Size), time.Since(r.Used).Round(time.Second))
		}
		tw.Flush()
	}
	fmt.Fprintf(c.stdout, "%s %d entries (%s); %d kept (%d in use or newest builds), the cache holds %s.\n",
		verb, len(res.Removed), humanSize(res.Freed), res.Kept, res.Protected, humanSize(res.Size))
}

// autoPrune applies the cache's automatic limits after a build; what it
// does is one line on stderr, what fails a warning.
func (c *cli) autoPrune(ctx context.Context, cs *cache.Store) {
	limits, err := gc.LimitsFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "warning: %v\n", err)
		return
	}
	st, _, err := c.stateStore()
	if err != nil {
		return
	}
	res, err := gc.Auto(ctx, cs, st, limits)
	if err != nil {
		fmt.Fprintf(c.stderr, "warning: cache prune: %v\n", err)
		return
	}
	if len(res.Removed) > 0 {
		fmt.Fprintf(c.stderr, "The cache was over its limit (%s): removed %d unused entries (%s); it holds %s.\n",
			gc.MaxSizeEnv, len(res.Removed), humanSize(res.Freed), humanSize(res.Size))
	}
}

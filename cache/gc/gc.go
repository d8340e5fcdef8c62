package gc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/unikfile/unikfile/cache"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// Options say what a prune removes (see Prune).
type Options struct {
	// All also lets the newest image of each app go and ignores stamps:
	// only what instances use stays.
	All bool
	// OlderThan leaves alone what was used within it; KeepSize stops once
	// the cache takes at most that many bytes (least recently used first).
	OlderThan time.Duration
	KeepSize  int64
	DryRun    bool
	// Wait waits for running builds; without it a prune that meets one
	// does nothing (Result.Skipped).
	Wait    bool
	Waiting func()
}

// Removed is one entry a prune removed (or, dry, would remove).
type Removed struct {
	cache.Entry
	// Images only: what the image is.
	App    string `json:"app,omitempty"`
	Format string `json:"format,omitempty"`
	Boot   string `json:"boot,omitempty"`
}

// Result is what a prune did.
type Result struct {
	Removed   []Removed `json:"removed"`
	Kept      int       `json:"kept"`
	Protected int       `json:"protected"`
	Freed     int64     `json:"freed_bytes"`
	Size      int64     `json:"size_bytes"`
	DryRun    bool      `json:"dry_run,omitempty"`
	Skipped   bool      `json:"skipped,omitempty"`
}

// Prune removes from cs what opts let go, never what an instance recorded
// in st uses, and (unless opts.All) never the newest image of an app (by
// app, format and boot mode: the one a build last used) nor what a build
// stamp names; with each of those it keeps what it was made from.
func Prune(ctx context.Context, cs *cache.Store, st *state.Store, opts Options) (Result, error) {
	var images = map[string]*pack.Image{}
	policy := cache.Policy{
		OlderThan: opts.OlderThan, KeepSize: opts.KeepSize, DryRun: opts.DryRun,
		Wait: opts.Wait, Waiting: opts.Waiting,
		Roots: func(entries []cache.Entry) ([]string, error) {
			for _, e := range entries {
				if e.Kind == "images" {
					if img, err := pack.ReadImage(e.Dir); err == nil {
						images[e.ID()] = img
					}
				}
			}
			return roots(cs, st, entries, images, opts.All)
		},
	}
	res, err := cs.Prune(ctx, policy)
	out := Result{Kept: res.Kept, Protected: res.Protected, Freed: res.Freed, Size: res.Size, DryRun: opts.DryRun, Skipped: res.Skipped}
	out.Removed = []Removed{}
	for _, e := range res.Removed {
		r := Removed{Entry: e}
		if img := images[e.ID()]; img != nil {
			r.App, r.Format, r.Boot = img.App, img.Format, img.Boot
		}
		out.Removed = append(out.Removed, r)
	}
	if !opts.DryRun && len(res.Removed) > 0 {
		removeStaleStamps(cs, res.Removed)
	}
	return out, err
}

// roots are the entries that stay, and with them what they were made
// from: by the store's records (Refs) and, for disk images made before
// those were recorded, by the kernel+initrd image a disk names (Source).
func roots(cs *cache.Store, st *state.Store, entries []cache.Entry, images map[string]*pack.Image, all bool) ([]string, error) {
	var out []string
	insts, err := st.List(state.Filter{})
	if err != nil {
		return nil, fmt.Errorf("prune: read the instances (a prune keeps what they use): %w", err)
	}
	for _, i := range insts {
		if id := cs.EntryOf(i.ImageDir); id != "" {
			out = append(out, id)
		}
	}
	if !all {
		type identity struct{ app, format, boot string }
		newest := map[identity]cache.Entry{}
		for _, e := range entries {
			img := images[e.ID()]
			if img == nil {
				continue
			}
			k := identity{img.App, img.Format, img.Boot}
			if cur, ok := newest[k]; !ok || e.Used.After(cur.Used) {
				newest[k] = e
			}
		}
		for _, e := range newest {
			out = append(out, e.ID())
		}
		out = append(out, stamped(cs)...)
	}
	// A disk's kernel+initrd image, by digest.
	byDigest := map[string]string{}
	for id, img := range images {
		if img.Format == pack.FormatKernelInitrd {
			byDigest[img.Digest] = id
		}
	}
	for _, id := range out {
		if img := images[id]; img != nil && img.Source != "" {
			if src, ok := byDigest[img.Source]; ok {
				out = append(out, src)
			}
		}
	}
	return out, nil
}

// stampsDir is where build stamps are (pipeline.StampPath).
func stampsDir(cs *cache.Store) string { return filepath.Join(cs.Dir(), "stamps") }

// stamped are the entries build stamps name.
func stamped(cs *cache.Store) []string {
	var out []string
	des, _ := os.ReadDir(stampsDir(cs))
	for _, de := range des {
		paths, err := cache.StampedPaths(filepath.Join(stampsDir(cs), de.Name()))
		if err != nil {
			continue
		}
		for _, p := range paths {
			if id := cs.EntryOf(p); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

// removeStaleStamps deletes the stamps that name a removed entry: they
// could never be replayed again.
func removeStaleStamps(cs *cache.Store, removed []cache.Entry) {
	gone := map[string]bool{}
	for _, e := range removed {
		gone[e.ID()] = true
	}
	des, _ := os.ReadDir(stampsDir(cs))
	for _, de := range des {
		p := filepath.Join(stampsDir(cs), de.Name())
		paths, err := cache.StampedPaths(p)
		if err != nil {
			continue
		}
		for _, sp := range paths {
			if gone[cs.EntryOf(sp)] {
				_ = os.Remove(p)
				break
			}
		}
	}
}

// Limits are the automatic prune's, applied after builds.
type Limits struct {
	// MaxSize is the cache's size above which the least recently used
	// entries that may go are removed; 0 turns it off.
	MaxSize int64
	// MaxAge removes entries not used for that long; 0 turns it off.
	MaxAge time.Duration
}

// Environment variables of the automatic limits.
const (
	MaxSizeEnv = "UNIKFILE_CACHE_MAX_SIZE"
	MaxAgeEnv  = "UNIKFILE_CACHE_MAX_AGE"
)

// DefaultMaxSize is the automatic limit when MaxSizeEnv is not set.
const DefaultMaxSize = 10 << 30

// AutoInterval is how often, at most, the automatic limit is checked.
const AutoInterval = time.Hour

// LimitsFromEnv reads the automatic limits: MaxSizeEnv (a size such as
// "10GiB", "500MB", or "off"; default DefaultMaxSize) and MaxAgeEnv (a
// duration such as "720h" or "30d", or "off"; default off).
func LimitsFromEnv(getenv func(string) string) (Limits, error) {
	l := Limits{MaxSize: DefaultMaxSize}
	if v := getenv(MaxSizeEnv); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			return l, fmt.Errorf("%s=%q: %w", MaxSizeEnv, v, err)
		}
		l.MaxSize = n
	}
	if v := getenv(MaxAgeEnv); v != "" {
		d, err := ParseAge(v)
		if err != nil {
			return l, fmt.Errorf("%s=%q: %w", MaxAgeEnv, v, err)
		}
		l.MaxAge = d
	}
	return l, nil
}

// lastAutoFile's time is the last automatic check.
const lastAutoFile = "gc.last"

// Auto applies the limits after a build, at most once per AutoInterval,
// without waiting for other builds (it does nothing while one runs) and
// keeping what Prune keeps. It reports what it removed.
func Auto(ctx context.Context, cs *cache.Store, st *state.Store, l Limits) (Result, error) {
	if l.MaxSize <= 0 && l.MaxAge <= 0 {
		return Result{Skipped: true}, nil
	}
	last := filepath.Join(cs.Dir(), lastAutoFile)
	if fi, err := os.Stat(last); err == nil && time.Since(fi.ModTime()) < AutoInterval {
		return Result{Skipped: true}, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, err
	}
	// Recorded first: a failing prune is not tried again at every build.
	if f, err := os.Create(last); err == nil {
		f.Close()
	}
	opts := Options{OlderThan: l.MaxAge, KeepSize: l.MaxSize}
	if l.MaxSize <= 0 {
		opts.KeepSize = 0
	}
	if l.MaxAge > 0 && l.MaxSize > 0 {
		// Both: first what is too old, then what is too much.
		res, err := Prune(ctx, cs, st, Options{OlderThan: l.MaxAge})
		if err != nil || res.Skipped {
			return res, err
		}
		more, err := Prune(ctx, cs, st, Options{KeepSize: l.MaxSize})
		more.Removed = append(res.Removed, more.Removed...)
		more.Freed += res.Freed
		return more, err
	}
	if l.MaxAge <= 0 {
		// A size limit alone removes only above the size.
		entries, err := cs.List()
		if err != nil {
			return Result{}, err
		}
		var size int64
		for _, e := range entries {
			size += e.Size
		}
		if size <= l.MaxSize {
			return Result{Size: size}, nil
		}
	}
	return Prune(ctx, cs, st, opts)
}

// KernelRoots are what a prune of the kernels unikfile builds (package
// kbuild, outside this cache) must keep for the sake of this cache.
type KernelRoots struct {
	// Digests are the sha256 of the kernel files of the images a prune
	// of this cache keeps (with all, only of those instances use), and of
	// the images disks among them were made from: the next build of their
	// app asks for the same kernel, and would compile it again.
	Digests map[string]bool
	// Paths are what build stamps name (unless all): a stamp of a build
	// with a minimal kernel names the kernel's folder.
	Paths []string
}

// KernelsKept returns the kernel roots of cs: the images Prune with
// Options{All: all} keeps now, and what it keeps with them. A caller
// that prunes kernels holds cs's GC lock (cache.Store.Lock) from this
// call to its prune's end, so that no build adds an image meanwhile.
// digest is the sha256 of a file (a StatCache's FileDigest, or
// cache.FileDigest).
func KernelsKept(cs *cache.Store, st *state.Store, all bool, digest func(string) (string, error)) (KernelRoots, error) {
	out := KernelRoots{Digests: map[string]bool{}}
	entries, err := cs.List()
	if err != nil {
		return out, err
	}
	images := map[string]*pack.Image{}
	byID := map[string]cache.Entry{}
	byDigest := map[string]string{}
	for _, e := range entries {
		byID[e.ID()] = e
		if e.Kind != "images" {
			continue
		}
		if img, err := pack.ReadImage(e.Dir); err == nil {
			images[e.ID()] = img
			if img.Format == pack.FormatKernelInitrd {
				byDigest[img.Digest] = e.ID()
			}
		}
	}
	ids, err := roots(cs, st, entries, images, all)
	if err != nil {
		return out, err
	}
	// Everything the roots were made from: a qcow2 disk its raw disk, a
	// disk its kernel+initrd image.
	seen := map[string]bool{}
	for len(ids) > 0 {
		id := ids[len(ids)-1]
		ids = ids[:len(ids)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		ids = append(ids, byID[id].Refs...)
		img := images[id]
		if img == nil {
			continue
		}
		if src, ok := byDigest[img.Source]; ok && img.Source != "" {
			ids = append(ids, src)
		}
		if img.Base != "linux" || img.Kernel == "" {
			continue
		}
		d, err := digest(filepath.Join(byID[id].Dir, img.Kernel))
		if err != nil {
			continue // an image without its kernel file keeps nothing
		}
		out.Digests[d] = true
	}
	if !all {
		des, _ := os.ReadDir(stampsDir(cs))
		for _, de := range des {
			if paths, err := cache.StampedPaths(filepath.Join(stampsDir(cs), de.Name())); err == nil {
				out.Paths = append(out.Paths, paths...)
			}
		}
	}
	return out, nil
}

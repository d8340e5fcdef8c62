package kbuild

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/cache"
)

// Pruning the kbuild folder. Its three parts age differently: kernels
// (a few MiB each, in the store) are kept while something may boot
// them again; a source version (1.5 GiB) and its object trees (130-250
// MiB each) only serve the next compile, which always uses the newest
// version, so an older version is dead weight once a newer one is
// unpacked.
//
// Safety, as the cache's own prune has it:
//   - a prune holds the folder's GC lock exclusively (cache.Store.Lock),
//     which Build holds shared from its choice of the source to its
//     kernel's making: a prune waits for running builds and builds wait
//     for it;
//   - a tree goes only when the prune takes its tree lock (the one Build
//     compiles under) without waiting: a build that holds it (one of an
//     older unikfile, which does not take the GC lock) keeps the tree and
//     its source, and the prune says so;
//   - everything leaves by one rename into tmp/ (named after the prune's
//     process), then is deleted: LatestSource and Lookup see a source or
//     a kernel whole or not at all, and a kill -9 during the deletion
//     leaves a folder in tmp/ that the next prune (or any cache.Open of
//     the folder) sweeps.

// Families of object trees (treeDir).
const (
	FamilyMicroVM = "microvm"
	FamilyPC      = "pc"
)

// family is the tree family of kernels with features.
func family(features []string) string {
	if (Needs{Features: features}).Has("pvh") {
		return FamilyMicroVM
	}
	return FamilyPC
}

// PruneOptions say what Prune removes.
type PruneOptions struct {
	// KeepDigests and KeepPaths name the kernels that stay whatever their
	// age: by the sha256 of their file (Kernel.Digest; the copy an image
	// holds has the same), and by a path in their folder (a build stamp
	// records it). They are the caller's to know (the images of its
	// cache the newest builds and the instances use): package kbuild
	// knows no images.
	KeepDigests map[string]bool
	KeepPaths   []string
	// All lets the newest source version and its trees go too: every
	// source and tree goes (the next build downloads and compiles from
	// scratch), and only the kernels named by KeepDigests and KeepPaths
	// stay.
	All bool
	// OlderThan, when set, spares what was used within it: kernels (their
	// last lookup or build), trees (their last compile) and sources (the
	// last compile in one of their trees, or their unpacking).
	OlderThan time.Duration
	// DryRun removes nothing and reports what would go.
	DryRun bool
	// Wait waits for running builds to finish (Waiting is called when it
	// starts to); without it a prune that meets one does nothing
	// (PruneResult.Skipped).
	Wait    bool
	Waiting func()
}

// PrunedKernel is a kernel a prune removed (or, dry, would remove).
type PrunedKernel struct {
	Key      string    `json:"key"`
	Release  string    `json:"release"`
	Source   string    `json:"source"`
	Features []string  `json:"features"`
	Dir      string    `json:"dir"`
	Size     int64     `json:"size_bytes"`
	Used     time.Time `json:"used"`
}

// PrunedDir is a source version, an object tree or a leftover folder a
// prune removed (or would remove).
type PrunedDir struct {
	Version string `json:"version,omitempty"`
	// Family is a tree's (FamilyMicroVM, FamilyPC).
	Family string    `json:"family,omitempty"`
	Dir    string    `json:"dir"`
	Size   int64     `json:"size_bytes"`
	Used   time.Time `json:"used,omitzero"`
	// Link is where a source that is a symbolic link points: the link
	// goes, never what it points to.
	Link string `json:"link,omitempty"`
}

// Busy is what a prune left because a build held it.
type Busy struct {
	Version string `json:"version"`
	Dir     string `json:"dir"`
	Reason  string `json:"reason"`
}

// PruneResult is what a prune did.
type PruneResult struct {
	Kernels []PrunedKernel `json:"kernels"`
	// Sources are the removed source versions; Trees every removed
	// object tree (those of removed sources included).
	Sources []PrunedDir `json:"sources"`
	Trees   []PrunedDir `json:"trees"`
	// Swept are folders an interrupted prune or build left in tmp/
	// (removed even by a dry run, as any command opening the folder
	// does).
	Swept []PrunedDir `json:"swept,omitempty"`
	Busy  []Busy      `json:"busy,omitempty"`
	// Current is the newest source version ("" when none is unpacked).
	Current string `json:"current_source,omitempty"`
	// KeptKernels counts the kernels that stay, of which Protected are
	// those KeepDigests and KeepPaths name; KeptSources and KeptTrees what stays of the rest.
	KeptKernels int      `json:"kept_kernels"`
	Protected   int      `json:"protected_kernels"`
	KeptSources []string `json:"kept_sources"`
	KeptTrees   int      `json:"kept_trees"`
	// Freed is what the removed kernels, sources and trees took (not the
	// swept folders); Size what the folder holds after the prune.
	Freed      int64 `json:"freed_bytes"`
	SweptBytes int64 `json:"swept_bytes,omitempty"`
	Size       int64 `json:"size_bytes"`
	DryRun     bool  `json:"dry_run,omitempty"`
	Skipped    bool  `json:"skipped,omitempty"`
}

// Prune removes from the kbuild folder root what opts let go: kernels
// not kept and not used within OlderThan; source versions other than
// the newest (unless All: all of them) with their object trees; object
// trees of the newest version from which no kernel that stays was built
// (a tree serves recompiles of its family's kernels). OlderThan spares
// what was used within it; a tree a build holds stays, with its source.
func Prune(ctx context.Context, root string, opts PruneOptions) (PruneResult, error) {
	res := PruneResult{DryRun: opts.DryRun, Kernels: []PrunedKernel{}, Sources: []PrunedDir{}, Trees: []PrunedDir{}, KeptSources: []string{}}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	res.Swept = sweepLeftovers(root)
	for _, s := range res.Swept {
		res.SweptBytes += s.Size
	}
	store, err := cache.Open(root)
	if err != nil {
		return res, err
	}
	release, ok, err := store.Lock(ctx, opts.Wait, opts.Waiting)
	if err != nil {
		return res, err
	}
	if !ok {
		res.Skipped = true
		return res, nil
	}
	defer release()

	current, err := LatestSource(root)
	if err != nil {
		return res, err
	}
	if current != nil {
		res.Current = current.Version
	}

	// Kernels, through the store's own prune (atomic removal, use
	// markers swept).
	kernels := map[string]*Kernel{}
	policy := cache.Policy{
		OlderThan: opts.OlderThan, DryRun: opts.DryRun, Locked: true,
		Roots: func(entries []cache.Entry) ([]string, error) {
			var list []*Kernel
			for _, e := range entries {
				if e.Kind != kindKernel {
					continue
				}
				if k, err := ReadKernel(e.Dir); err == nil {
					kernels[e.Key] = k
					list = append(list, k)
				}
			}
			var ids []string
			for _, k := range list {
				if opts.KeepDigests[k.Digest] {
					ids = append(ids, kindKernel+"/"+k.Key)
				}
			}
			for _, p := range opts.KeepPaths {
				if id := store.EntryOf(p); strings.HasPrefix(id, kindKernel+"/") {
					ids = append(ids, id)
				}
			}
			return ids, nil
		},
	}
	kres, err := store.Prune(ctx, policy)
	if err != nil && len(kres.Removed) == 0 {
		return res, err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	gone := map[string]bool{}
	for _, e := range kres.Removed {
		gone[e.Key] = true
		pk := PrunedKernel{Key: e.Key, Dir: e.Dir, Size: e.Size, Used: e.Used}
		if k := kernels[e.Key]; k != nil {
			pk.Release, pk.Source, pk.Features = k.Release, k.Source, k.Features
		}
		res.Kernels = append(res.Kernels, pk)
	}
	res.KeptKernels, res.Protected = kres.Kept, kres.Protected
	res.Freed, res.Size = kres.Freed, kres.Size

	// What the kernels that stay were built in: each needs its tree to
	// be recompiled (a changed configuration of its family) cheaply.
	staying := map[string]bool{} // version/family
	for key, k := range kernels {
		if !gone[key] {
			if v, ok := strings.CutPrefix(k.Source, SourcePackage+" "); ok {
				staying[v+"/"+family(k.Features)] = true
			}
		}
	}

	for _, v := range versions(root) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		errs = append(errs, pruneVersion(root, v, current != nil && v == current.Version, staying, opts, &res)...)
	}
	sort.Slice(res.Trees, func(i, j int) bool {
		if res.Trees[i].Version != res.Trees[j].Version {
			return versionLess(res.Trees[i].Version, res.Trees[j].Version)
		}
		return res.Trees[i].Family < res.Trees[j].Family
	})
	return res, errors.Join(errs...)
}

// pruneVersion removes what goes of source version v: its source and
// trees, or some of its trees. A version a build holds a tree of stays
// whole.
func pruneVersion(root, v string, isCurrent bool, staying map[string]bool, opts PruneOptions, res *PruneResult) []error {
	cutoff := time.Now().Add(-opts.OlderThan)
	recent := func(t time.Time) bool { return opts.OlderThan > 0 && t.After(cutoff) }
	srcDir := filepath.Join(srcRoot(root), v)
	treesDir := filepath.Join(root, "trees", v)
	src, haveSrc := dirInfo(srcDir)
	if fi, err := os.Lstat(srcDir); err == nil {
		src.Used = changed(fi) // its unpacking, if no compile came after
	}
	var keep, drop []PrunedDir
	for _, t := range treesOf(root, v) {
		if t.Used.After(src.Used) {
			src.Used = t.Used // a compile uses the source
		}
		if recent(t.Used) || (isCurrent && !opts.All && staying[v+"/"+t.Family]) {
			keep = append(keep, t)
		} else {
			drop = append(drop, t)
		}
	}
	keepSrc := (isCurrent && !opts.All) || recent(src.Used) || len(keep) > 0
	keepAll := func(trees []PrunedDir, source bool) {
		for _, t := range trees {
			res.KeptTrees++
			res.Size += t.Size
		}
		if source && haveSrc {
			res.KeptSources = append(res.KeptSources, v)
			res.Size += src.Size
		}
	}
	keepAll(keep, keepSrc)
	if len(drop) == 0 && (keepSrc || !haveSrc) {
		if !keepSrc && !opts.DryRun {
			// Only lock files are left of the version's trees.
			_ = os.RemoveAll(treesDir)
		}
		return nil
	}

	// The tree locks of what goes (a build compiles under them); when the
	// source goes, every lock of the version.
	families := map[string]bool{}
	for _, t := range drop {
		families[t.Family] = true
	}
	if !keepSrc {
		for _, f := range lockFamilies(root, v) {
			families[f] = true
		}
	}
	var errs []error
	var unlocks []func()
	defer func() {
		for _, u := range unlocks {
			u()
		}
	}()
	busy := false
	for _, f := range sortedKeys(families) {
		unlock, ok, err := tryLockFile(filepath.Join(treesDir, f+".lock"))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("kbuild: lock the %s tree of %s: %w", f, v, err))
			busy = true
		case !ok:
			res.Busy = append(res.Busy, Busy{Version: v, Dir: filepath.Join(treesDir, f), Reason: "a kernel build is compiling in it"})
			busy = true
		default:
			unlocks = append(unlocks, unlock)
		}
	}
	if busy {
		keepAll(drop, !keepSrc)
		return errs
	}

	if haveSrc && !keepSrc {
		// The source first: once it is gone no build chooses this
		// version, whatever is left of its trees.
		if err := removeAside(root, srcDir, "src-"+v, opts.DryRun); err != nil {
			errs = append(errs, err)
			keepAll(nil, true)
		} else {
			res.Sources = append(res.Sources, src)
			res.Freed += src.Size
		}
	}
	if !keepSrc && len(keep) == 0 {
		// The whole version's trees, lock files included: with the
		// source gone no build takes them again.
		if _, err := os.Lstat(treesDir); err == nil {
			if err := removeAside(root, treesDir, "trees-"+v, opts.DryRun); err != nil {
				errs = append(errs, err)
				keepAll(drop, false)
				return errs
			}
		}
		for _, t := range drop {
			res.Trees = append(res.Trees, t)
			res.Freed += t.Size
		}
		return errs
	}
	for _, t := range drop {
		// One tree; its lock file stays for the builds that come after.
		if err := removeAside(root, t.Dir, "tree-"+v+"-"+t.Family, opts.DryRun); err != nil {
			errs = append(errs, err)
			keepAll([]PrunedDir{t}, false)
			continue
		}
		res.Trees = append(res.Trees, t)
		res.Freed += t.Size
	}
	return errs
}

// versions are the source versions root has a source or trees of,
// oldest first.
func versions(root string) []string {
	seen := map[string]bool{}
	for _, dir := range []string{srcRoot(root), filepath.Join(root, "trees")} {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if !strings.HasPrefix(de.Name(), ".") && (de.IsDir() || de.Type()&fs.ModeSymlink != 0) {
				seen[de.Name()] = true
			}
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i], out[j]) })
	return out
}

// treesOf are the object trees of source version v.
func treesOf(root, v string) []PrunedDir {
	var out []PrunedDir
	des, _ := os.ReadDir(filepath.Join(root, "trees", v))
	for _, de := range des {
		if !de.IsDir() && de.Type()&fs.ModeSymlink == 0 {
			continue
		}
		t, _ := dirInfo(filepath.Join(root, "trees", v, de.Name()))
		t.Version, t.Family = v, de.Name()
		// The fragment is written at every compile in the tree.
		if fi, err := os.Stat(filepath.Join(t.Dir, "unikfile.fragment")); err == nil && fi.ModTime().After(t.Used) {
			t.Used = fi.ModTime()
		}
		out = append(out, t)
	}
	return out
}

// lockFamilies are the families with a lock file or a tree under
// trees/v.
func lockFamilies(root, v string) []string {
	var out []string
	des, _ := os.ReadDir(filepath.Join(root, "trees", v))
	for _, de := range des {
		if f, ok := strings.CutSuffix(de.Name(), ".lock"); ok && !de.IsDir() {
			out = append(out, f)
		} else if de.IsDir() {
			out = append(out, de.Name())
		}
	}
	return out
}

// dirInfo is a folder's disk use (the blocks its files take) and the
// last modification of the folder itself; a symbolic link counts as
// nothing and is not followed.
func dirInfo(dir string) (PrunedDir, bool) {
	d := PrunedDir{Dir: dir, Version: filepath.Base(dir)}
	fi, err := os.Lstat(dir)
	if err != nil {
		return d, false
	}
	d.Used = fi.ModTime()
	if fi.Mode()&fs.ModeSymlink != 0 {
		d.Link, _ = os.Readlink(dir)
		return d, true
	}
	d.Size = diskUse(dir)
	return d, true
}

// changed is the later of a file's modification and status change (an
// unpacked tree keeps the archive's times, its rename into place
// changes its status).
func changed(fi fs.FileInfo) time.Time {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(t) {
			t = c
		}
	}
	return t
}

func diskUse(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// removeAside takes dir out of its place by one rename into root/tmp
// (named after this process, so that a sweep leaves it while the prune
// runs and removes it after a kill), then deletes it. A dry run only
// checks that dir is there.
func removeAside(root, dir, name string, dry bool) error {
	if dry {
		if _, err := os.Lstat(dir); err != nil {
			return fmt.Errorf("kbuild: %w", err)
		}
		return nil
	}
	tmp := filepath.Join(root, "tmp", strconv.Itoa(os.Getpid())+"-prune-"+name)
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err != nil {
		return fmt.Errorf("kbuild: %w", err)
	}
	if err := os.Rename(dir, tmp); err != nil {
		return fmt.Errorf("kbuild: remove %s: %w", dir, err)
	}
	if f, err := os.Open(filepath.Dir(dir)); err == nil {
		_ = f.Sync()
		f.Close()
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("kbuild: remove %s (moved to %s): %w", dir, tmp, err)
	}
	return nil
}

// sweepLeftovers removes the folders in root/tmp whose process is gone
// (an interrupted prune's, a killed build's or download's) and says what
// they were.
func sweepLeftovers(root string) []PrunedDir {
	var out []PrunedDir
	des, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, de := range des {
		pidStr, _, _ := strings.Cut(de.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		p := filepath.Join(root, "tmp", de.Name())
		d, _ := dirInfo(p)
		d.Version = ""
		if os.RemoveAll(p) == nil {
			out = append(out, d)
		}
	}
	return out
}

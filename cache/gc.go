package cache

import (
	"context"
	"encoding/json"
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

	"github.com/gofrs/flock"
)

// Garbage collection. The store knows entries, their sizes, when they were
// last used and what they were made from; which entries must stay (the
// roots: what instances run, the newest build of each app) is its caller's
// to say (package cache/gc).
//
// Removal is safe against a concurrent build in two ways:
//   - an entry leaves objects/ by one rename (into tmp/, then deleted), so a
//     Lookup finds it whole and verified or not at all, never half removed
//     (a kill -9 during the deletion leaves a folder in tmp/ that the next
//     Open sweeps);
//   - a build holds the store's GC lock shared (Hold) from its first lookup
//     to its last use of what it looked up (up: until the instance is
//     recorded); Prune takes it exclusively, so it waits for running builds
//     and they wait the moment it takes.

// usedDir holds one empty file per entry whose modification time is the
// entry's last use (a Lookup hit or its Fill).
const usedDir = "used"

// gcLockFile is the GC lock; gcWantFile gives a waiting prune the way
// over builds that come after it (without it, builds that overlap would
// keep a prune waiting for ever).
const (
	gcLockFile = "gc.lock"
	gcWantFile = "gc.want"
)

// touch records a use of an entry; errors only lose the hint.
func (s *Store) touch(kind, key string) {
	p := filepath.Join(s.dir, usedDir, kind, key)
	now := time.Now()
	if err := os.Chtimes(p, now, now); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
	}
}

// refs turns entry directories (or paths inside them) into "kind/key".
func (s *Store) refs(paths []string) []string {
	var out []string
	sep := string(filepath.Separator)
	var prefixes []string
	if abs, err := filepath.Abs(filepath.Join(s.dir, "objects")); err == nil {
		prefixes = append(prefixes, abs+sep)
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			prefixes = append(prefixes, real+sep)
		}
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		for _, pre := range prefixes {
			rest, ok := strings.CutPrefix(abs, pre)
			if !ok {
				continue
			}
			parts := strings.SplitN(filepath.ToSlash(rest), "/", 3)
			if len(parts) >= 2 && parts[0] != "" && parts[1] != "" {
				out = append(out, parts[0]+"/"+parts[1])
			}
			break
		}
	}
	sort.Strings(out)
	return out
}

// Hold takes the GC lock shared, waiting while a prune runs, until ctx
// ends. A build holds it while it looks entries up and uses them, so that
// no prune removes them under it. release may be called more than once.
func (s *Store) Hold(ctx context.Context) (release func(), err error) {
	fail := func(err error) error {
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("cache: wait for a prune of %s to finish: %w", s.dir, err)
	}
	want := flock.New(filepath.Join(s.dir, gcWantFile), flock.SetPermissions(0o644))
	defer want.Close()
	if ok, err := want.TryRLockContext(ctx, 50*time.Millisecond); err != nil || !ok {
		return nil, fail(err)
	}
	fl := flock.New(filepath.Join(s.dir, gcLockFile), flock.SetPermissions(0o644))
	ok, err := fl.TryRLockContext(ctx, 50*time.Millisecond)
	_ = want.Unlock()
	if err != nil || !ok {
		_ = fl.Close()
		return nil, fail(err)
	}
	return onceFunc(func() { _ = fl.Unlock(); _ = fl.Close() }), nil
}

// Lock takes the GC lock exclusively, as Prune does, for a caller that
// removes what builds of this store use without Prune (the kernels'
// folder: package kbuild), or that must keep this store's builds out
// while it prunes another: at once when wait is false (ok false when
// builds hold it), else until ctx ends, calling waiting once if it has
// to wait. A Prune of the same store meanwhile needs Policy.Locked.
func (s *Store) Lock(ctx context.Context, wait bool, waiting func()) (release func(), ok bool, err error) {
	return s.lockExclusive(ctx, wait, waiting)
}

// lockExclusive takes the GC lock for a prune: at once when wait is
// false (ok false when builds hold it), else until ctx ends, calling
// waiting once if it has to wait.
func (s *Store) lockExclusive(ctx context.Context, wait bool, waiting func()) (release func(), ok bool, err error) {
	want := flock.New(filepath.Join(s.dir, gcWantFile), flock.SetPermissions(0o644))
	fl := flock.New(filepath.Join(s.dir, gcLockFile), flock.SetPermissions(0o644))
	closeAll := func() { _ = fl.Unlock(); _ = fl.Close(); _ = want.Unlock(); _ = want.Close() }
	try := func() (bool, error) {
		if got, err := want.TryLock(); err != nil || !got {
			return false, err
		}
		if got, err := fl.TryLock(); err != nil || !got {
			_ = want.Unlock()
			return false, err
		}
		return true, nil
	}
	got, err := try()
	if err == nil && !got && wait {
		if waiting != nil {
			waiting()
		}
		// Builds that start now wait behind the prune; those running
		// finish first.
		if got, err = want.TryLockContext(ctx, 50*time.Millisecond); err == nil && got {
			got, err = fl.TryLockContext(ctx, 100*time.Millisecond)
		}
	}
	if err != nil || !got {
		closeAll()
		if wait && ctx.Err() != nil {
			return nil, false, fmt.Errorf("cache: wait for running builds to finish: %w", ctx.Err())
		}
		return nil, false, err
	}
	return onceFunc(closeAll), true, nil
}

func onceFunc(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}

// Entry describes one cache entry for garbage collection.
type Entry struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
	Dir  string `json:"dir"`
	// Size is the disk space its files take (allocated blocks: sparse
	// disk images count what they hold).
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	// Used is its last use (a cache hit or its making), at least Created.
	Used time.Time `json:"used"`
	// Refs are the entries it was made from ("kind/key").
	Refs []string `json:"refs,omitempty"`
}

// ID is the entry's "kind/key".
func (e Entry) ID() string { return e.Kind + "/" + e.Key }

// List returns every complete entry of every kind, least recently used
// first.
func (s *Store) List() ([]Entry, error) {
	kinds, err := os.ReadDir(filepath.Join(s.dir, "objects"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("cache: %w", err)
	}
	var out []Entry
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		keys, err := os.ReadDir(filepath.Join(s.dir, "objects", k.Name()))
		if err != nil {
			continue
		}
		for _, de := range keys {
			if e, ok := s.entry(k.Name(), de.Name()); ok {
				out = append(out, e)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Used.Equal(out[j].Used) {
			return out[i].Used.Before(out[j].Used)
		}
		return out[i].ID() < out[j].ID()
	})
	return out, nil
}

// entry reads one entry's description without counting it as a use.
func (s *Store) entry(kind, key string) (Entry, bool) {
	p := s.entryPath(kind, key)
	b, err := os.ReadFile(filepath.Join(p, metaFile))
	if err != nil {
		return Entry{}, false
	}
	var m entryMeta
	if json.Unmarshal(b, &m) != nil || m.Key != key || m.Kind != kind {
		return Entry{}, false
	}
	e := Entry{Kind: kind, Key: key, Dir: p, Refs: m.Refs}
	if fi, err := os.Stat(filepath.Join(p, metaFile)); err == nil {
		e.Created = fi.ModTime()
	}
	e.Used = e.Created
	if fi, err := os.Stat(filepath.Join(s.dir, usedDir, kind, key)); err == nil && fi.ModTime().After(e.Used) {
		e.Used = fi.ModTime()
	}
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				// A file linked into several entries (the cache's one copy
				// of a kernel, in every image of it) counts its share in
				// each, so that the entries' sizes add up to the disk used.
				e.Size += st.Blocks * 512 / int64(max(st.Nlink, 1))
			} else {
				e.Size += fi.Size()
			}
		}
		return nil
	})
	return e, true
}

// remove takes an entry out of the store: one rename makes it invisible
// to Lookup, then its files are deleted.
func (s *Store) remove(e Entry) error {
	tmp := filepath.Join(s.dir, "tmp", strconv.Itoa(os.Getpid())+"-prune-"+e.Kind+"-"+e.Key)
	if err := os.Rename(e.Dir, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // another prune took it
		}
		return fmt.Errorf("cache: remove %s: %w", e.ID(), err)
	}
	syncDir(filepath.Dir(e.Dir))
	_ = os.Remove(filepath.Join(s.dir, usedDir, e.Kind, e.Key))
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cache: remove %s: %w", e.ID(), err)
	}
	return nil
}

// Policy says what a prune removes.
type Policy struct {
	// Roots says, from the entries there are when the prune holds the
	// lock, which stay ("kind/key"), with every entry they were made from
	// (Refs, transitively). It runs under the lock, so that no build adds
	// an entry between the choice and the removal.
	Roots func([]Entry) ([]string, error)
	// OlderThan, when set, leaves alone the entries used within it.
	OlderThan time.Duration
	// KeepSize, when above 0, stops the prune once the cache takes at
	// most that many bytes; least recently used entries go first.
	// Without it, every entry that may go goes.
	KeepSize int64
	// DryRun removes nothing and reports what would go.
	DryRun bool
	// Wait makes the prune wait for running builds (Hold) to finish;
	// otherwise it does nothing when one runs (Skipped). Waiting is
	// called when it starts to wait.
	Wait    bool
	Waiting func()
	// Locked says the caller holds the GC lock already (Lock): Prune
	// neither takes it nor waits.
	Locked bool
}

// PruneResult is what a prune did.
type PruneResult struct {
	Removed []Entry `json:"removed"`
	// Kept counts the entries that stay, of which Protected are roots or
	// what roots were made from.
	Kept      int `json:"kept"`
	Protected int `json:"protected"`
	// Freed and Size are bytes: what the removed entries took, what the
	// cache takes after the prune.
	Freed int64 `json:"freed_bytes"`
	Size  int64 `json:"size_bytes"`
	// Skipped says a build was running and nothing was looked at (only
	// without Policy.Wait).
	Skipped bool `json:"skipped,omitempty"`
}

// Prune removes the entries the policy lets go. It holds the GC lock
// exclusively while it decides and removes (or its caller does:
// Policy.Locked).
func (s *Store) Prune(ctx context.Context, p Policy) (PruneResult, error) {
	var res PruneResult
	if !p.Locked {
		release, ok, err := s.lockExclusive(ctx, p.Wait, p.Waiting)
		if err != nil {
			return res, err
		}
		if !ok {
			res.Skipped = true
			return res, nil
		}
		defer release()
	}
	entries, err := s.List()
	if err != nil {
		return res, err
	}
	byID := map[string]Entry{}
	for _, e := range entries {
		byID[e.ID()] = e
		res.Size += e.Size
	}
	protected := map[string]bool{}
	var keep func(id string)
	keep = func(id string) {
		if protected[id] {
			return
		}
		protected[id] = true
		for _, r := range byID[id].Refs {
			keep(r)
		}
	}
	if p.Roots != nil {
		roots, err := p.Roots(entries)
		if err != nil {
			return res, err
		}
		for _, r := range roots {
			keep(r)
		}
	}
	cutoff := time.Now().Add(-p.OlderThan)
	var errs []error
	for _, e := range entries { // least recently used first
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if protected[e.ID()] {
			res.Protected++
			res.Kept++
			continue
		}
		if (p.OlderThan > 0 && e.Used.After(cutoff)) || (p.KeepSize > 0 && res.Size <= p.KeepSize) {
			res.Kept++
			continue
		}
		if !p.DryRun {
			if err := s.remove(e); err != nil {
				errs = append(errs, err)
				res.Kept++
				continue
			}
		}
		res.Removed = append(res.Removed, e)
		res.Freed += e.Size
		res.Size -= e.Size
	}
	if !p.DryRun {
		s.sweepUsed(byID)
	}
	return res, errors.Join(errs...)
}

// sweepUsed removes use markers of entries that are gone.
func (s *Store) sweepUsed(live map[string]Entry) {
	kinds, _ := os.ReadDir(filepath.Join(s.dir, usedDir))
	for _, k := range kinds {
		keys, _ := os.ReadDir(filepath.Join(s.dir, usedDir, k.Name()))
		for _, de := range keys {
			id := k.Name() + "/" + de.Name()
			if _, ok := live[id]; !ok {
				if _, err := os.Stat(s.entryPath(k.Name(), de.Name())); errors.Is(err, fs.ErrNotExist) {
					_ = os.Remove(filepath.Join(s.dir, usedDir, k.Name(), de.Name()))
				}
			}
		}
	}
}

// EntryOf returns "kind/key" of the entry that holds path (an entry's
// directory or a file in it), or "" when path is not in the store.
func (s *Store) EntryOf(path string) string {
	r := s.refs([]string{path})
	if len(r) == 0 {
		return ""
	}
	return r[0]
}

package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/internal/stamp"
)

// absentMode marks a path that did not exist when it was seen (an
// ignore file, a go env file): its appearance is a change.
const absentMode = stamp.AbsentMode

// Saw records that this run relied on path's metadata (a folder it
// listed, a file it read without digesting, a file it looked for and did
// not find), for Snapshot. The first sighting counts.
func (sc *StatCache) Saw(path string) {
	if sc == nil {
		return
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return
	}
	sc.mu.Lock()
	_, done := sc.seen[abs]
	sc.mu.Unlock()
	if done {
		return
	}
	recorded := time.Now().UnixNano()
	e := statEntry{mode: absentMode, recorded: recorded}
	if fi, err := os.Stat(abs); err == nil {
		if m, ok := sc.meta(fi); ok {
			e = m
			e.recorded = recorded
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return
	}
	sc.mu.Lock()
	if _, done := sc.seen[abs]; !done {
		sc.seen[abs] = e
	}
	sc.mu.Unlock()
}

// SawTree records every folder below root (and root), for Snapshot: a
// file added anywhere in it changes its folder.
func (sc *StatCache) SawTree(root string) {
	if sc == nil {
		return
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			sc.Saw(p)
		}
		return nil
	})
}

// Snapshot is the metadata of everything a run relied on: the files it
// digested (as they were when digested) and the paths it saw. A later run
// whose Snapshot check passes would read exactly the same inputs.
type Snapshot struct {
	entries map[string]statEntry
}

// Snapshot returns what this run relied on; ok is false when a file it
// digested changed while it was read (its metadata was not recorded), so
// the run cannot vouch for its inputs.
func (sc *StatCache) Snapshot() (Snapshot, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	s := Snapshot{entries: map[string]statEntry{}}
	for p := range sc.used {
		e, ok := sc.entries[p]
		if !ok {
			return Snapshot{}, false
		}
		s.entries[p] = e
	}
	for p, e := range sc.seen {
		if _, digested := s.entries[p]; !digested {
			s.entries[p] = e
		}
	}
	return s, true
}

// WriteStamp records snap under key, with what a replay prints, at path
// atomically (internal/stamp owns the format). A path that cannot be
// recorded (a tab or newline in its name) records no stamp.
func WriteStamp(path, key string, snap Snapshot, r stamp.Replay) error {
	entries := make(map[string]stamp.Entry, len(snap.entries))
	for p, e := range snap.entries {
		entries[p] = stamp.Entry{Size: e.size, Mtime: e.mtime, Ctime: e.ctime, Ino: e.ino, Dev: e.dev, Mode: e.mode, Recorded: e.recorded}
	}
	data, ok := stamp.Encode(key, entries, r)
	if !ok {
		return nil
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// Len is how many paths snap holds.
func (s Snapshot) Len() int { return len(s.entries) }

// CheckStamp is stamp.Check with sc's Granularity: what to replay if the
// stamp at path was recorded for key and every path it lists is
// unchanged, and how many paths were checked.
func (sc *StatCache) CheckStamp(path, key string) (stamp.Replay, int, bool) {
	return stamp.Check(path, key, sc.Granularity)
}

// StampedPaths lists the paths a stamp file records (what its build relied
// on and produced), for a prune to keep what stamps name.
func StampedPaths(path string) ([]string, error) {
	paths, ok, err := stamp.Paths(path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: not a stamp", path)
	}
	return paths, nil
}

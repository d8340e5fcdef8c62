package cache

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
)

// absentMode marks a path that did not exist when it was seen (an
// ignore file, a go env file): its appearance is a change.
const absentMode = ^uint32(0)

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

const stampHeader = "unikfile stamp v1"

// WriteStamp records snap and payload (what the run printed) at path
// atomically.
func WriteStamp(path string, snap Snapshot, payload []byte) error {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintln(w, stampHeader)
	fmt.Fprintln(w, base64.StdEncoding.EncodeToString(payload))
	paths := make([]string, 0, len(snap.entries))
	for p := range snap.entries {
		if !strings.ContainsAny(p, "\t\n") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		e := snap.entries[p]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", p, e.size, e.mtime, e.ctime, e.ino, e.dev, e.mode, e.recorded)
	}
	w.Flush()
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}

// CheckStamp reads the stamp at path and returns its payload if every
// path it lists still has the metadata it had, and had not changed within
// RacyWindow of when it was recorded; sc supplies the comparison rules.
// Any doubt (a missing or unreadable stamp, one changed path) is false.
// The paths are checked on every CPU at once: a stamp of a large tree
// lists thousands, and the answer is on the critical path of a no-op.
func (sc *StatCache) CheckStamp(path string) ([]byte, int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, false
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 || lines[0] != stampHeader {
		return nil, 0, false
	}
	payload, err := base64.StdEncoding.DecodeString(lines[1])
	if err != nil {
		return nil, 0, false
	}
	lines = lines[2:]
	workers := min(runtime.GOMAXPROCS(0), (len(lines)+stampChunk-1)/stampChunk)
	var failed atomic.Bool
	var checked atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			// Worker w takes chunks w, w+workers, ...: each gets near
			// and far paths alike.
			for lo := w * stampChunk; lo < len(lines) && !failed.Load(); lo += workers * stampChunk {
				for _, l := range lines[lo:min(lo+stampChunk, len(lines))] {
					if l == "" {
						continue
					}
					if !sc.stampLineHolds(l) {
						failed.Store(true)
						return
					}
					n++
				}
			}
			checked.Add(int64(n))
		}()
	}
	wg.Wait()
	if failed.Load() {
		return nil, 0, false
	}
	return payload, int(checked.Load()), true
}

// stampChunk is how many stamp lines a worker checks at a time.
const stampChunk = 64

// stampLineHolds reports whether the path of one stamp line still has the
// metadata recorded there.
func (sc *StatCache) stampLineHolds(l string) bool {
	f := strings.Split(l, "\t")
	if len(f) != 8 {
		return false
	}
	var want statEntry
	var errs [7]error
	want.size, errs[0] = strconv.ParseInt(f[1], 10, 64)
	want.mtime, errs[1] = strconv.ParseInt(f[2], 10, 64)
	want.ctime, errs[2] = strconv.ParseInt(f[3], 10, 64)
	want.ino, errs[3] = strconv.ParseUint(f[4], 10, 64)
	want.dev, errs[4] = strconv.ParseUint(f[5], 10, 64)
	mode, err := strconv.ParseUint(f[6], 10, 32)
	errs[5] = err
	want.mode = uint32(mode)
	want.recorded, errs[6] = strconv.ParseInt(f[7], 10, 64)
	if errors.Join(errs[:]...) != nil {
		return false
	}
	fi, err := os.Stat(f[0])
	if want.mode == absentMode {
		return errors.Is(err, fs.ErrNotExist)
	}
	if err != nil {
		return false
	}
	got, ok := sc.meta(fi)
	return ok && got.size == want.size && got.mtime == want.mtime && got.ctime == want.ctime &&
		got.ino == want.ino && got.dev == want.dev && got.mode == want.mode && !sc.racy(want)
}

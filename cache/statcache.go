package cache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/internal/stamp"
)

// RacyWindow is how long after a file's last change its metadata is not
// trusted to stand for its content (stamp.RacyWindow, which says why):
// until it has passed, the file's digest is recomputed.
const RacyWindow = stamp.RacyWindow

const statCacheHeader = "unikfile stat cache v1"

// StatCache remembers files' content digests by their metadata (size,
// mtime, ctime, inode, device, mode), so that a tree whose files did not
// change is digested from stat calls alone, the way git's index avoids
// rereading unchanged files. An entry is used only when every field
// matches and the file had not changed within RacyWindow of when the
// entry was recorded; otherwise the file is hashed again. It never returns
// a digest the file's current content does not have, short of a clock set
// backwards or metadata forged on purpose.
//
// It is safe for concurrent use. Save writes it atomically; two processes
// saving at once lose one's new entries, never correctness.
type StatCache struct {
	path string
	// Granularity truncates timestamps before they are compared and
	// recorded, modelling filesystems with coarse timestamps; 0 keeps
	// nanoseconds. Tests set it to check the racy window.
	Granularity time.Duration

	mu      sync.Mutex
	entries map[string]statEntry
	dirty   bool
	used    map[string]bool
	// seen holds paths whose metadata this run relied on without
	// digesting them (folders listed, files read), for Snapshot.
	seen map[string]statEntry
	// hashed counts files whose content was read, for tests and bench.
	hashed int
}

type statEntry struct {
	size, mtime, ctime int64
	ino, dev           uint64
	mode               uint32
	recorded           int64 // unix ns, when the metadata was read
	digest             string
}

// OpenStatCache reads the stat cache at path; a missing or unreadable file
// gives an empty cache (it is only a cache).
func OpenStatCache(path string) *StatCache {
	sc := &StatCache{path: path, entries: map[string]statEntry{}, used: map[string]bool{}, seen: map[string]statEntry{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return sc
	}
	sc.parse(data)
	return sc
}

func (sc *StatCache) parse(data []byte) {
	lines := bytes.Split(data, []byte{'\n'})
	if len(lines) == 0 || string(lines[0]) != statCacheHeader {
		return
	}
	for _, l := range lines[1:] {
		f := strings.Split(string(l), "\t")
		if len(f) != 9 {
			continue
		}
		var e statEntry
		var errs [7]error
		e.size, errs[0] = strconv.ParseInt(f[1], 10, 64)
		e.mtime, errs[1] = strconv.ParseInt(f[2], 10, 64)
		e.ctime, errs[2] = strconv.ParseInt(f[3], 10, 64)
		e.ino, errs[3] = strconv.ParseUint(f[4], 10, 64)
		e.dev, errs[4] = strconv.ParseUint(f[5], 10, 64)
		mode, err := strconv.ParseUint(f[6], 10, 32)
		errs[5] = err
		e.mode = uint32(mode)
		e.recorded, errs[6] = strconv.ParseInt(f[7], 10, 64)
		e.digest = f[8]
		if errors.Join(errs[:]...) != nil || len(e.digest) != 64 {
			continue
		}
		sc.entries[f[0]] = e
	}
}

// Hashed is how many files had their content read since the cache was
// opened.
func (sc *StatCache) Hashed() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.hashed
}

// meta reads fi's metadata into an entry (without digest), as a stamp
// records it.
func (sc *StatCache) meta(fi fs.FileInfo) (statEntry, bool) {
	e, ok := stamp.Meta(fi, sc.Granularity)
	if !ok {
		return statEntry{}, false
	}
	return statEntry{size: e.Size, mtime: e.Mtime, ctime: e.Ctime, ino: e.Ino, dev: e.Dev, mode: e.Mode}, true
}

// FileDigest returns the sha256 of the regular file at path, from the
// cache when its metadata says it is unchanged.
func (sc *StatCache) FileDigest(path string) (string, error) {
	if sc == nil {
		return FileDigest(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	before, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	m, ok := sc.meta(before)
	if !ok {
		return FileDigest(abs)
	}
	sc.mu.Lock()
	e, have := sc.entries[abs]
	sc.used[abs] = true
	sc.mu.Unlock()
	if have && e.size == m.size && e.mtime == m.mtime && e.ctime == m.ctime && e.ino == m.ino && e.dev == m.dev && e.mode == m.mode &&
		!sc.racy(e) {
		return e.digest, nil
	}

	recorded := time.Now().UnixNano()
	d, err := FileDigest(abs)
	if err != nil {
		return "", err
	}
	sc.mu.Lock()
	sc.hashed++
	sc.mu.Unlock()
	// Record only if nothing changed while the file was read.
	after, err := os.Stat(abs)
	if err != nil {
		return d, nil
	}
	if m2, ok := sc.meta(after); ok && m2 == m && !strings.ContainsAny(abs, "\t\n") {
		m.recorded, m.digest = recorded, d
		sc.mu.Lock()
		sc.entries[abs] = m
		sc.dirty = true
		sc.mu.Unlock()
	}
	return d, nil
}

// racy reports whether the file may have changed again within the
// timestamp tick of its last recorded change: its mtime or ctime (which,
// truncated to Granularity, may stand for any time up to one tick later)
// is within RacyWindow of when the metadata was read.
func (sc *StatCache) racy(e statEntry) bool {
	limit := e.recorded - int64(RacyWindow) - int64(sc.Granularity)
	return e.mtime >= limit || e.ctime >= limit
}

// Save writes the cache if it changed. Entries of files this process did
// not look at are kept (other projects share the cache), unless the cache
// has grown past maxStatEntries.
func (sc *StatCache) Save() error {
	if sc == nil {
		return nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.dirty {
		return nil
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintln(w, statCacheHeader)
	trim := len(sc.entries) > maxStatEntries
	for p, e := range sc.entries {
		if trim && !sc.used[p] {
			continue
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p, e.size, e.mtime, e.ctime, e.ino, e.dev, e.mode, e.recorded, e.digest)
	}
	w.Flush()
	if err := atomicfile.WriteFile(sc.path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("stat cache: %w", err)
	}
	sc.dirty = false
	return nil
}

const maxStatEntries = 200000

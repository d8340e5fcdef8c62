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
)

// metaFile is written into every entry last; an entry without it, or whose
// files do not match it, is not trusted.
const metaFile = ".unikfile-entry.json"

// Store is a cache rooted at a directory.
type Store struct {
	dir string
	// lookupOnly makes Fill report ErrNotCached instead of filling.
	lookupOnly bool
}

// ErrNotCached is Fill's error on a LookupOnly store for an entry that is
// not in the cache.
var ErrNotCached = errors.New("not in the cache")

// LookupOnly returns a view of the store whose Fill never creates an
// entry: a missing one is ErrNotCached. It answers "what would a build
// redo?" (unikfile graph) by running the same key computations.
func (s *Store) LookupOnly() *Store { return &Store{dir: s.dir, lookupOnly: true} }

// IsLookupOnly says whether the store is a LookupOnly view: stages whose
// outputs live outside it (built kernels) look up without building then.
func (s *Store) IsLookupOnly() bool { return s.lookupOnly }

type entryMeta struct {
	Kind  string            `json:"kind"`
	Key   string            `json:"key"`
	Files map[string]int64  `json:"files"` // path -> size
	Info  map[string]string `json:"info,omitempty"`
	// Refs are the entries this one was made from ("kind/key"): what a
	// prune keeps with it (see gc.go).
	Refs []string `json:"refs,omitempty"`
}

// Open opens (creating it if needed) the cache at dir and removes temporary
// folders left by processes that no longer run.
func Open(dir string) (*Store, error) {
	for _, sub := range []string{"objects", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	s := &Store{dir: dir}
	s.sweep()
	return s, nil
}

// Dir is the cache's root directory.
func (s *Store) Dir() string { return s.dir }

// Path is where the entry kind/key is, or would be once filled: what a
// Fill that makes one entry from another names in its from list before
// the other exists.
func (s *Store) Path(kind, key string) string { return s.entryPath(kind, key) }

func (s *Store) entryPath(kind, key string) string {
	return filepath.Join(s.dir, "objects", kind, key)
}

// Lookup returns the directory of a complete, verified entry, and counts
// it as used (see gc.go).
func (s *Store) Lookup(kind, key string) (string, bool) {
	p, ok := s.Verify(kind, key)
	if ok && !s.lookupOnly {
		s.touch(kind, key)
	}
	return p, ok
}

// Verify is Lookup without counting a use: for listings.
func (s *Store) Verify(kind, key string) (string, bool) {
	p := s.entryPath(kind, key)
	b, err := os.ReadFile(filepath.Join(p, metaFile))
	if err != nil {
		return "", false
	}
	var m entryMeta
	if json.Unmarshal(b, &m) != nil || m.Key != key || m.Kind != kind {
		return "", false
	}
	for rel, size := range m.Files {
		fi, err := os.Lstat(filepath.Join(p, rel))
		if err != nil || (fi.Mode().IsRegular() && fi.Size() != size) {
			return "", false
		}
	}
	return p, true
}

// Fill returns the entry for (kind, key), running fill to create it when it
// is missing. fill writes into an empty private directory; the directory
// becomes the entry only if fill succeeds. The second result is true when
// the entry was already there (a cache hit). from names the entries (their
// directories, or files in them) the new one is made from: a prune that
// keeps it keeps them too.
func (s *Store) Fill(ctx context.Context, kind, key string, fill func(ctx context.Context, dir string) error, from ...string) (string, bool, error) {
	if p, ok := s.Lookup(kind, key); ok {
		return p, true, nil
	}
	if s.lookupOnly {
		return "", false, ErrNotCached
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", false, fmt.Errorf("cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := fill(ctx, tmp); err != nil {
		return "", false, err
	}
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	files := map[string]int64{}
	err = filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tmp, path)
		files[filepath.ToSlash(rel)] = fi.Size()
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("cache: %w", err)
	}
	meta, _ := json.MarshalIndent(entryMeta{Kind: kind, Key: key, Files: files, Refs: s.refs(from)}, "", "  ")
	if err := writeFileSync(filepath.Join(tmp, metaFile), meta); err != nil {
		return "", false, fmt.Errorf("cache: %w", err)
	}
	final := s.entryPath(kind, key)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", false, fmt.Errorf("cache: %w", err)
	}
	// A stale, unverifiable entry (from an older layout) is moved aside first.
	if _, err := os.Stat(final); err == nil {
		if _, ok := s.Lookup(kind, key); ok {
			return final, false, nil // another process filled it meanwhile
		}
		aside := final + ".stale-" + strconv.Itoa(os.Getpid())
		if err := os.Rename(final, aside); err == nil {
			defer os.RemoveAll(aside)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, ok := s.Lookup(kind, key); ok {
			return final, false, nil
		}
		return "", false, fmt.Errorf("cache: %w", err)
	}
	syncDir(filepath.Dir(final))
	s.touch(kind, key)
	return final, false, nil
}

// Entries lists the keys stored under kind.
func (s *Store) Entries(kind string) ([]string, error) {
	des, err := os.ReadDir(filepath.Join(s.dir, "objects", kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, de := range des {
		if _, ok := s.Verify(kind, de.Name()); ok {
			keys = append(keys, de.Name())
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// sweep removes temporary folders whose owning process is gone.
func (s *Store) sweep() {
	des, err := os.ReadDir(filepath.Join(s.dir, "tmp"))
	if err != nil {
		return
	}
	for _, de := range des {
		pidStr, _, _ := strings.Cut(de.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(s.dir, "tmp", de.Name()))
		}
	}
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

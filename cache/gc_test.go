package cache

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func fillEntry(t *testing.T, s *Store, kind, key string, size int, from ...string) string {
	t.Helper()
	dir, _, err := s.Fill(context.Background(), kind, key, func(ctx context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "data"), make([]byte, size), 0o644)
	}, from...)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// used sets an entry's last use.
func used(t *testing.T, s *Store, kind, key string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(s.Dir(), usedDir, kind, key), at, at); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(s.entryPath(kind, key), metaFile), at, at); err != nil {
		t.Fatal(err)
	}
}

func roots(ids ...string) func([]Entry) ([]string, error) {
	return func([]Entry) ([]string, error) { return ids, nil }
}

func ids(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID())
	}
	return out
}

func TestPruneKeepsRootsAndWhatTheyWereMadeFrom(t *testing.T) {
	s, _ := Open(t.TempDir())
	b1 := fillEntry(t, s, "bundles", "b1", 10)
	fillEntry(t, s, "bundles", "b2", 10)
	i1 := fillEntry(t, s, "images", "i1", 10, b1)
	fillEntry(t, s, "images", "raw1", 10, filepath.Join(i1, "data")) // a file of the entry counts
	fillEntry(t, s, "images", "i2", 10)
	es, err := s.List()
	if err != nil || len(es) != 5 {
		t.Fatalf("List = %v, %v", ids(es), err)
	}
	for _, e := range es {
		if e.ID() == "images/raw1" && (len(e.Refs) != 1 || e.Refs[0] != "images/i1") {
			t.Errorf("raw1 refs %v", e.Refs)
		}
		if e.Size < 10 || e.Used.Before(e.Created) {
			t.Errorf("%s: size %d created %v used %v", e.ID(), e.Size, e.Created, e.Used)
		}
	}
	dry, err := s.Prune(context.Background(), Policy{Roots: roots("images/raw1"), DryRun: true})
	if err != nil || len(dry.Removed) != 2 {
		t.Fatalf("dry run: %v, %v", ids(dry.Removed), err)
	}
	if _, ok := s.Lookup("bundles", "b2"); !ok {
		t.Fatal("a dry run removed an entry")
	}
	res, err := s.Prune(context.Background(), Policy{Roots: roots("images/raw1")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, id := range ids(res.Removed) {
		got[id] = true
	}
	if len(got) != 2 || !got["bundles/b2"] || !got["images/i2"] || res.Protected != 3 || res.Kept != 3 || res.Freed <= 0 {
		t.Fatalf("removed %v protected %d kept %d freed %d; want b2 and i2", ids(res.Removed), res.Protected, res.Kept, res.Freed)
	}
	for _, k := range [][2]string{{"bundles", "b1"}, {"images", "i1"}, {"images", "raw1"}} {
		if _, ok := s.Lookup(k[0], k[1]); !ok {
			t.Errorf("%s/%s was removed", k[0], k[1])
		}
	}
	if _, ok := s.Lookup("images", "i2"); ok {
		t.Error("i2 is still there")
	}
	if des, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(des) != 0 {
		t.Errorf("tmp holds %v after the prune", des)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), usedDir, "images", "i2")); !os.IsNotExist(err) {
		t.Errorf("the use marker of a removed entry stays: %v", err)
	}
}

func TestPruneBySizeAndAge(t *testing.T) {
	s, _ := Open(t.TempDir())
	now := time.Now()
	for i, k := range []string{"old", "middle", "new"} {
		fillEntry(t, s, "images", k, 64<<10)
		used(t, s, "images", k, now.Add(time.Duration(i-3)*24*time.Hour)) // 3, 2, 1 days ago
	}
	es, _ := s.List()
	if got := ids(es); len(got) != 3 || got[0] != "images/old" || got[2] != "images/new" {
		t.Fatalf("List is not least recently used first: %v", got)
	}
	one := es[0].Size
	res, err := s.Prune(context.Background(), Policy{KeepSize: 2*one + one/2})
	if err != nil || len(res.Removed) != 1 || res.Removed[0].Key != "old" || res.Size > 2*one+one/2 {
		t.Fatalf("keep-size: removed %v, size %d, %v", ids(res.Removed), res.Size, err)
	}
	res, err = s.Prune(context.Background(), Policy{OlderThan: 36 * time.Hour})
	if err != nil || len(res.Removed) != 1 || res.Removed[0].Key != "middle" {
		t.Fatalf("older-than: removed %v, %v", ids(res.Removed), err)
	}
	// A lookup is a use: it saves an entry from an age limit.
	used(t, s, "images", "new", now.Add(-48*time.Hour))
	if _, ok := s.Lookup("images", "new"); !ok {
		t.Fatal("lookup")
	}
	res, err = s.Prune(context.Background(), Policy{OlderThan: 36 * time.Hour})
	if err != nil || len(res.Removed) != 0 {
		t.Fatalf("an entry just looked up was removed: %v, %v", ids(res.Removed), err)
	}
}

// A prune waits for builds that hold the store; without Wait it gives
// up at once; a build waits for a prune that runs.
func TestPruneAndHoldExcludeEachOther(t *testing.T) {
	s, _ := Open(t.TempDir())
	fillEntry(t, s, "images", "x", 10)
	release, err := s.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(context.Background(), Policy{})
	if err != nil || !res.Skipped || len(res.Removed) != 0 {
		t.Fatalf("a prune without Wait while a build holds the store: %+v, %v", res, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	waited := false
	_, err = s.Prune(ctx, Policy{Wait: true, Waiting: func() { waited = true }})
	cancel()
	if err == nil || !waited {
		t.Fatalf("a waiting prune did not wait for the build: %v, waited %v", err, waited)
	}
	done := make(chan PruneResult)
	go func() {
		r, _ := s.Prune(context.Background(), Policy{Wait: true})
		done <- r
	}()
	time.Sleep(200 * time.Millisecond)
	if _, ok := s.Lookup("images", "x"); !ok {
		t.Fatal("the entry went while the build held the store")
	}
	release()
	release()
	if r := <-done; len(r.Removed) != 1 {
		t.Fatalf("after the build: removed %v", ids(r.Removed))
	}
}

// Builds that look entries up and read them while prunes remove them
// never find an entry half there: a lookup either fails (and the build
// fills it again) or gives every file.
func TestPruneDuringBuildsNeverShowsAHalfEntry(t *testing.T) {
	s, _ := Open(t.TempDir())
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures sync.Map
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				release, err := s.Hold(ctx)
				if err != nil {
					failures.Store("hold", err)
					return
				}
				key := []string{"a", "b", "c"}[i%3]
				dir, _, err := s.Fill(ctx, "images", key, func(ctx context.Context, dir string) error {
					for f := 0; f < 20; f++ {
						if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+f))), []byte(key), 0o644); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					failures.Store("fill", err)
				} else {
					for f := 0; f < 20; f++ {
						if b, err := os.ReadFile(filepath.Join(dir, "f"+string(rune('a'+f)))); err != nil || string(b) != key {
							failures.Store("read", err)
						}
					}
				}
				release()
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if _, err := s.Prune(ctx, Policy{Wait: true}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("%v: %v", k, v)
		return true
	})
}

// A file linked into several entries (the cache's one copy of a kernel,
// in each image of it) is counted once across them: the sizes a prune
// adds up are the disk the cache takes.
func TestListCountsALinkedFileOnce(t *testing.T) {
	s, _ := Open(t.TempDir())
	shared := fillEntry(t, s, "kernel-images", "k", 256<<10)
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := s.Fill(context.Background(), "images", k, func(ctx context.Context, dir string) error {
			return os.Link(filepath.Join(shared, "data"), filepath.Join(dir, "kernel"))
		}, shared); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.List()
	if err != nil || len(es) != 4 {
		t.Fatalf("List: %v, %v", ids(es), err)
	}
	var total int64
	for _, e := range es {
		total += e.Size
	}
	// The file's blocks once, and four small entry records.
	if total < 256<<10 || total > 256<<10+4*16<<10 {
		t.Errorf("entries add up to %d bytes for one file of %d linked into four of them", total, 256<<10)
	}
}

package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLargeStampCheckedWhole: a stamp of many paths (several chunks, on
// every CPU) counts every path, and a change to any one of them, the last
// or the first, is seen.
func TestLargeStampCheckedWhole(t *testing.T) {
	dir := t.TempDir()
	const files = 5*stampChunk + 7
	var paths []string
	for i := 0; i < files; i++ {
		p := filepath.Join(dir, "src", fmt.Sprintf("f%04d", i))
		writeFile(t, p, "x")
		age(t, p)
		paths = append(paths, p)
	}
	time.Sleep(RacyWindow + 100*time.Millisecond)
	stamp := filepath.Join(dir, "stamp")
	record := func() {
		t.Helper()
		sc := OpenStatCache(filepath.Join(dir, "statcache"))
		for _, p := range paths {
			sc.Saw(p)
		}
		snap, ok := sc.Snapshot()
		if !ok {
			t.Fatal("no snapshot")
		}
		if err := WriteStamp(stamp, snap, []byte("out")); err != nil {
			t.Fatal(err)
		}
	}
	record()
	if _, n, ok := OpenStatCache(filepath.Join(dir, "statcache")).CheckStamp(stamp); !ok || n != files {
		t.Fatalf("unchanged: ok=%v, %d paths checked, want %d", ok, n, files)
	}
	for _, i := range []int{files - 1, 0, files / 2} {
		if err := os.Remove(paths[i]); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := OpenStatCache(filepath.Join(dir, "statcache")).CheckStamp(stamp); ok {
			t.Errorf("the stamp holds with path %d of %d removed", i, files)
		}
		writeFile(t, paths[i], "x")
		age(t, paths[i])
		time.Sleep(RacyWindow + 100*time.Millisecond)
		record()
		if _, n, ok := OpenStatCache(filepath.Join(dir, "statcache")).CheckStamp(stamp); !ok || n != files {
			t.Fatalf("re-recorded: ok=%v, %d paths checked, want %d", ok, n, files)
		}
	}
}

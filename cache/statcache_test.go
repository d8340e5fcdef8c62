package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/unikfile/unikfile/ignore"
	"github.com/unikfile/unikfile/internal/stamp"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// age sets a file's mtime into the past, as if it had been written long
// before; its ctime is now, so the test waits out the racy window after.
func age(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestStatCacheReusesDigestsOfUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "main.go"), "package main\n")
	writeFile(t, filepath.Join(src, "lib/lib.go"), "package lib\n")
	age(t, filepath.Join(src, "main.go"))
	age(t, filepath.Join(src, "lib/lib.go"))
	time.Sleep(RacyWindow + 100*time.Millisecond) // the ctimes leave the racy window

	m, _ := ignore.New(nil)
	want, err := TreeDigest(src, m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "statcache")
	sc := OpenStatCache(path)
	if got, _ := TreeDigestWith(src, m, sc); got != want {
		t.Fatalf("digest with the stat cache %s, want %s", got, want)
	}
	if sc.Hashed() != 2 {
		t.Errorf("first run hashed %d files, want 2", sc.Hashed())
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}

	// A new process: the saved metadata stands for the content.
	sc = OpenStatCache(path)
	if got, _ := TreeDigestWith(src, m, sc); got != want {
		t.Fatalf("second digest %s, want %s", got, want)
	}
	if sc.Hashed() != 0 {
		t.Errorf("unchanged files were hashed again: %d", sc.Hashed())
	}

	// An edit is seen, and only the edited file is read.
	writeFile(t, filepath.Join(src, "lib/lib.go"), "package lib\n\nvar X = 1\n")
	sc = OpenStatCache(path)
	got, _ := TreeDigestWith(src, m, sc)
	if fresh, _ := TreeDigest(src, m); got != fresh || got == want {
		t.Errorf("after an edit: digest %s, a fresh digest is %s (before: %s)", got, fresh, want)
	}
	if sc.Hashed() != 1 {
		t.Errorf("after editing one file, %d were hashed, want 1", sc.Hashed())
	}
}

// An edit that keeps the size and, on a filesystem with coarse
// timestamps, the mtime and ctime, is still seen: the entry was recorded
// within the racy window of the file's last change, so it is not trusted.
func TestStatCacheRacyEditKeepingSizeAndTimes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	path := filepath.Join(dir, "statcache")
	writeFile(t, file, "aaaa")
	before, _ := os.Stat(file)

	sc := OpenStatCache(path)
	// Timestamps compared at one-hour granularity: like FAT's 2 s, but
	// coarse enough that the edit below lands in the same tick for sure.
	sc.Granularity = time.Hour
	d1, err := sc.FileDigest(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}

	writeFile(t, file, "bbbb") // same size
	if err := os.Chtimes(file, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	sc = OpenStatCache(path)
	sc.Granularity = time.Hour
	d2, err := sc.FileDigest(file)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := FileDigest(file)
	if d2 != want || d2 == d1 {
		t.Fatalf("digest after a same-size, same-tick edit = %s, want the new content's %s (old %s)", d2, want, d1)
	}
	if sc.Hashed() != 1 {
		t.Errorf("the racy file was not hashed again")
	}
}

// Metadata that differs in any field makes the file be read again, even
// when its content is the same (the digest is then equal).
func TestStatCacheMetadataFields(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	path := filepath.Join(dir, "statcache")
	writeFile(t, file, "content")
	age(t, file)
	time.Sleep(RacyWindow + 100*time.Millisecond)
	sc := OpenStatCache(path)
	d, _ := sc.FileDigest(file)
	sc.Save()

	// Replaced by another file with the same content, size and mtime: a
	// new inode.
	fi, _ := os.Stat(file)
	tmp := filepath.Join(dir, "g")
	writeFile(t, tmp, "CONTENT")
	os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	sc = OpenStatCache(path)
	got, _ := sc.FileDigest(file)
	want, _ := FileDigest(file)
	if got != want || got == d {
		t.Errorf("a file replaced by rename: digest %s, want %s", got, want)
	}

	// A corrupt cache file is an empty cache, not an error.
	os.WriteFile(path, []byte("unikfile stat cache v1\n"+file+"\tx\ty\n"), 0o644)
	sc = OpenStatCache(path)
	if got, err := sc.FileDigest(file); err != nil || got != want {
		t.Errorf("with a corrupt cache: %s, %v", got, err)
	}
}

func TestStampHoldsUntilAnInputChanges(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "main.go"), "package main\n")
	age(t, filepath.Join(src, "main.go"))
	stampPath := filepath.Join(dir, "stamp")

	record := func() {
		t.Helper()
		sc := OpenStatCache(filepath.Join(dir, "statcache"))
		m, _ := ignore.New(nil)
		if _, err := TreeDigestWith(src, m, sc); err != nil {
			t.Fatal(err)
		}
		sc.Saw(filepath.Join(dir, "Unikfile")) // absent
		snap, ok := sc.Snapshot()
		if !ok {
			t.Fatal("no snapshot")
		}
		if err := WriteStamp(stampPath, "key", snap, stamp.Replay{Stdout: []byte("out")}); err != nil {
			t.Fatal(err)
		}
		sc.Save()
	}
	check := func() bool {
		r, _, ok := OpenStatCache(filepath.Join(dir, "statcache")).CheckStamp(stampPath, "key")
		if ok && string(r.Stdout) != "out" {
			t.Fatalf("replay %q", r.Stdout)
		}
		return ok
	}

	record() // main.go was just written (and its times set)
	if check() {
		t.Error("a stamp recorded within the racy window of an input's last change was trusted")
	}
	time.Sleep(RacyWindow + 100*time.Millisecond)
	record()
	if !check() {
		t.Fatal("an unchanged tree does not match its stamp")
	}

	for _, c := range []struct {
		name   string
		change func()
	}{
		{"a file added", func() { writeFile(t, filepath.Join(src, "new.go"), "package main\n") }},
		{"a file edited", func() { writeFile(t, filepath.Join(src, "main.go"), "package main // edited\n") }},
		{"an ignore file created", func() { writeFile(t, filepath.Join(src, ".unikignore"), ".unikignore\n") }},
		{"an absent file created", func() { writeFile(t, filepath.Join(dir, "Unikfile"), "") }},
	} {
		c.change()
		if check() {
			t.Errorf("%s: the stamp still holds", c.name)
		}
		time.Sleep(RacyWindow + 100*time.Millisecond)
		record()
		if !check() {
			t.Fatalf("%s: re-recorded stamp does not hold", c.name)
		}
	}
}

// Nodes of one run digest trees at once through one StatCache.
func TestStatCacheConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(dir, "src", fmt.Sprintf("f%d", i)), fmt.Sprint(i))
	}
	m, _ := ignore.New(nil)
	want, _ := TreeDigest(filepath.Join(dir, "src"), m)
	sc := OpenStatCache(filepath.Join(dir, "statcache"))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			if got, err := TreeDigestWith(filepath.Join(dir, "src"), m, sc); err != nil || got != want {
				t.Errorf("concurrent digest %s, %v; want %s", got, err, want)
			}
			sc.Saw(filepath.Join(dir, "src"))
		})
	}
	wg.Wait()
	if _, ok := sc.Snapshot(); !ok {
		t.Error("no snapshot")
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
}

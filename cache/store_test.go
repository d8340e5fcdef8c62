package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/unikfile/unikfile/ignore"
)

func TestFillHitAndFailure(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs := 0
	fill := func(ctx context.Context, dir string) error {
		runs++
		return os.WriteFile(filepath.Join(dir, "out"), []byte("data"), 0o644)
	}
	p1, hit, err := s.Fill(ctx, "k", "abc", fill)
	if err != nil || hit {
		t.Fatalf("first fill: hit=%v err=%v", hit, err)
	}
	p2, hit, err := s.Fill(ctx, "k", "abc", fill)
	if err != nil || !hit || p1 != p2 || runs != 1 {
		t.Fatalf("second fill: hit=%v err=%v runs=%d", hit, err, runs)
	}
	b, _ := os.ReadFile(filepath.Join(p2, "out"))
	if string(b) != "data" {
		t.Fatalf("entry content = %q", b)
	}
	boom := errors.New("boom")
	if _, _, err := s.Fill(ctx, "k", "def", func(ctx context.Context, dir string) error {
		os.WriteFile(filepath.Join(dir, "half"), []byte("x"), 0o644)
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	if _, ok := s.Lookup("k", "def"); ok {
		t.Fatal("a failed fill must not leave an entry")
	}
	if des, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(des) != 0 {
		t.Fatalf("temporary folders left: %v", des)
	}
}

func TestTamperedEntryIsNotTrusted(t *testing.T) {
	s, _ := Open(t.TempDir())
	ctx := context.Background()
	p, _, err := s.Fill(ctx, "k", "x", func(ctx context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "out"), []byte("complete"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(p, "out"), []byte("trunc"), 0o644) // a torn write
	if _, ok := s.Lookup("k", "x"); ok {
		t.Fatal("an entry whose file size changed must not be trusted")
	}
	_, hit, err := s.Fill(ctx, "k", "x", func(ctx context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "out"), []byte("complete"), 0o644)
	})
	if err != nil || hit {
		t.Fatalf("refill: hit=%v err=%v", hit, err)
	}
	if b, _ := os.ReadFile(filepath.Join(p, "out")); string(b) != "complete" {
		t.Fatalf("refilled entry = %q", b)
	}
}

func TestSweepRemovesDeadProcessesTemp(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	dead := filepath.Join(s.Dir(), "tmp", "999999999-abc")
	os.MkdirAll(dead, 0o755)
	Open(dir)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("temp folder of a dead process survived: %v", err)
	}
}

func TestConcurrentFill(t *testing.T) {
	s, _ := Open(t.TempDir())
	var wg sync.WaitGroup
	var fills atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.Fill(context.Background(), "k", "same", func(ctx context.Context, dir string) error {
				fills.Add(1)
				return os.WriteFile(filepath.Join(dir, "out"), []byte("v"), 0o644)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, ok := s.Lookup("k", "same"); !ok {
		t.Fatal("no entry after concurrent fills")
	}
}

func TestTreeDigest(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.go", "package main")
	write(".unikignore", "*.log\n")
	m, err := ignore.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := TreeDigest(dir, m)
	write("debug.log", "noise")
	write(".git/HEAD", "ref")
	write(".main.go.swp", "x")
	if d2, _ := TreeDigest(dir, m); d2 != d1 {
		t.Fatal("ignored files changed the digest")
	}
	write("main.go", "package main // edited")
	if d3, _ := TreeDigest(dir, m); d3 == d1 {
		t.Fatal("an edit did not change the digest")
	}
	os.Chmod(filepath.Join(dir, "main.go"), 0o755)
	d4, _ := TreeDigest(dir, m)
	os.Chmod(filepath.Join(dir, "main.go"), 0o644)
	if d5, _ := TreeDigest(dir, m); d4 == d5 {
		t.Fatal("the executable bit is not part of the digest")
	}
}

func TestKeyIsUnambiguous(t *testing.T) {
	a := (&Key{}).Add("ab", "c").Sum()
	b := (&Key{}).Add("a", "bc").Sum()
	if a == b {
		t.Fatal("keys of different parts collide")
	}
}

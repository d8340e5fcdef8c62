package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func start(t *testing.T, dir string, opts Options) *Watcher {
	t.Helper()
	w, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// next waits for a batch; it fails the test after a generous time.
func next(t *testing.T, w *Watcher) []string {
	t.Helper()
	select {
	case b := <-w.Changes():
		return b
	case err := <-w.Errors():
		t.Fatalf("watcher error: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no change reported")
	}
	return nil
}

// none checks that no batch comes within d.
func none(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	select {
	case b := <-w.Changes():
		t.Fatalf("unexpected change: %v", b)
	case <-time.After(d):
	}
}

// An editor that saves by writing a temporary file and renaming it over the
// original (vim, most IDEs) is seen.
func TestRenameOverTargetIsSeen(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	write(t, main, "v1")
	w := start(t, dir, Options{})
	tmp := filepath.Join(dir, "main.go.tmp")
	write(t, tmp, "v2")
	if err := os.Rename(tmp, main); err != nil {
		t.Fatal(err)
	}
	if b := next(t, w); !slices.Contains(b, main) {
		t.Fatalf("rename over main.go not reported: %v", b)
	}
	// The directory is still watched after the rename: a second save is seen.
	write(t, tmp, "v3")
	if err := os.Rename(tmp, main); err != nil {
		t.Fatal(err)
	}
	if b := next(t, w); !slices.Contains(b, main) {
		t.Fatalf("second rename over main.go not reported: %v", b)
	}
}

func TestNewDirectoriesAreWatched(t *testing.T) {
	dir := t.TempDir()
	w := start(t, dir, Options{})
	sub := filepath.Join(dir, "pkg")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	next(t, w)
	f := filepath.Join(sub, "x.go")
	write(t, f, "x")
	if b := next(t, w); !slices.Contains(b, f) {
		t.Fatalf("file in a new directory not reported: %v", b)
	}
	// A tree created at once (mkdir -p and a file before the watch could be
	// added): its file is reported from the walk.
	deep := filepath.Join(dir, "a", "b", "c", "y.go")
	write(t, deep, "y")
	if b := next(t, w); !slices.Contains(b, deep) {
		t.Fatalf("file in a new tree not reported: %v", b)
	}
	write(t, deep, "y2")
	if b := next(t, w); !slices.Contains(b, deep) {
		t.Fatalf("write in a new tree not reported: %v", b)
	}
}

func TestSkippedPathsAreNotReported(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	write(t, filepath.Join(dir, ".git", "HEAD"), "ref")
	write(t, filepath.Join(out, "old"), "x")
	w := start(t, dir, Options{Ignore: func(p string, isDir bool) bool { return p == out }})
	write(t, filepath.Join(dir, ".git", "index"), "x")
	write(t, filepath.Join(dir, ".main.go.swp"), "x")
	write(t, filepath.Join(dir, "4913"), "x")
	write(t, filepath.Join(dir, "main.go~"), "x")
	write(t, filepath.Join(dir, ".#main.go"), "x")
	write(t, filepath.Join(out, "build.log"), "x")
	write(t, filepath.Join(out, "new", "deep"), "x")
	none(t, w, time.Second)
	real := filepath.Join(dir, "main.go")
	write(t, real, "x")
	if b := next(t, w); !slices.Equal(b, []string{real}) {
		t.Fatalf("got %v, want only %s", b, real)
	}
}

// A burst of saves gives one batch (at most two, should the quiet period
// fall inside the burst).
func TestBurstIsCoalesced(t *testing.T) {
	dir := t.TempDir()
	w := start(t, dir, Options{})
	f := filepath.Join(dir, "main.go")
	for i := range 100 {
		write(t, f, fmt.Sprint(i))
	}
	batches := 0
	for {
		select {
		case b := <-w.Changes():
			batches++
			if !slices.Equal(b, []string{f}) {
				t.Fatalf("batch %v, want only %s", b, f)
			}
			continue
		case <-time.After(2 * time.Second):
		}
		break
	}
	if batches < 1 || batches > 2 {
		t.Fatalf("100 writes gave %d batches, want 1 or 2", batches)
	}
}

// Changes that never stop still come out, bounded by MaxDelay.
func TestMaxDelayBoundsAnEndlessBurst(t *testing.T) {
	dir := t.TempDir()
	w := start(t, dir, Options{Quiet: time.Second, MaxDelay: 300 * time.Millisecond})
	f := filepath.Join(dir, "log")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			os.WriteFile(f, []byte(fmt.Sprint(i)), 0o644)
		}
	}()
	defer func() { close(stop); <-done }()
	select {
	case b := <-w.Changes():
		if !slices.Contains(b, f) {
			t.Fatalf("batch %v", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writes every 50 ms with a 1 s quiet period and a 300 ms bound gave no batch")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	w, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
}

func TestMissingRoot(t *testing.T) {
	_, err := New(filepath.Join(t.TempDir(), "nope"), Options{})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("want an error naming the missing root, got %v", err)
	}
}

// At the open-file limit inotify_init fails with EMFILE, exactly as at the
// inotify instance limit: the error says what to raise.
func TestInstanceLimitSaysWhatToRaise(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The limit bounds descriptor numbers: the lowest free one is the next
	// to be handed out, so a limit equal to it leaves none.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	next := f.Fd()
	f.Close()
	lim := old
	lim.Cur = uint64(next)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	_, err = New(dir, Options{})
	if rerr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("New succeeded with no file descriptor left")
	}
	for _, want := range []string{"fs.inotify.max_user_instances", "sudo sysctl", "ulimit -n"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestWatchLimitSaysWhatToRaise(t *testing.T) {
	err := limitError("/src/big", fmt.Errorf("add: %w", syscall.ENOSPC))
	for _, want := range []string{"/src/big", "fs.inotify.max_user_watches", "sudo sysctl fs.inotify.max_user_watches=", ".unikignore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

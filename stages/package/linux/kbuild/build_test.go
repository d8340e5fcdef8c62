package kbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A build cancelled while make compiles stops make's whole process
// group, records no kernel, and a later lookup finds nothing.
func TestBuildIsCancelledWithItsProcesses(t *testing.T) {
	src := machineSource(t)
	if err := CheckTools(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src.Dir, filepath.Join(root, "src", src.Version)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var said []string
	compiling := make(chan struct{})
	var once sync.Once
	b := &Builder{Root: root, Jobs: 2, Say: func(s string) {
		mu.Lock()
		said = append(said, s)
		mu.Unlock()
		if strings.HasPrefix(s, "compiling ") {
			once.Do(func() { close(compiling) })
		}
	}}
	n, _ := NeedsFor("go", Platform{})
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Build(ctx, n)
		done <- err
	}()
	select {
	case <-compiling:
	case err := <-done:
		t.Fatalf("the build ended before it compiled: %v", err)
	case <-time.After(5 * time.Minute):
		t.Fatal("the build did not start compiling in 5 minutes")
	}
	// Let make start its compilers, then cancel.
	tree := filepath.Join(root, "trees", src.Version, "microvm")
	waitFor(t, 3*time.Minute, func() bool { return len(processesIn(tree)) > 0 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a cancelled build returned %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the build did not return a minute after it was cancelled")
	}
	waitFor(t, 10*time.Second, func() bool { return len(processesIn(tree)) == 0 })
	if left := processesIn(tree); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("processes of the cancelled build still run: %v", left)
	}
	if k, err := b.Lookup(context.Background(), n); err != nil || k != nil {
		t.Errorf("after a cancelled build, Lookup = %v, %v", k, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) > 0 {
		t.Errorf("the cancelled build left %d temporary folders", len(ents))
	}
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
	}
}

// processesIn lists the processes whose working directory or command
// line is in dir (make and its compilers run with O=dir).
func processesIn(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cl, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if strings.Contains(string(cl), dir) || strings.HasPrefix(cwd, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

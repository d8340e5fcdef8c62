package rumprun

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeTree makes a folder laid out as a Rumprun toolchain (empty files):
// enough for Resolve, which checks the layout.
func fakeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"bin/rumprun-bake", "bin/" + Tuple + "-gcc", "bin/" + Tuple + "-g++", "rumprun-x86_64/lib/rumprun-hw/rumprun.o"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolveOrder(t *testing.T) {
	set, env, inPath := fakeTree(t), fakeTree(t), fakeTree(t)
	path := "PATH=" + filepath.Join(inPath, "bin") + ":/usr/bin"
	for _, tc := range []struct {
		name, setting string
		environ       []string
		want, from    string
	}{
		{"the Unikfile's setting first", set, []string{Env + "=" + env, path}, set, "rump { toolchain }"},
		{"then the variable", "", []string{Env + "=" + env, path}, env, "$" + Env},
		{"then PATH", "", []string{path}, inPath, "in PATH"},
	} {
		tc2, err := Resolve(tc.setting, tc.environ)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want, _ := filepath.EvalSymlinks(tc.want); tc2.Dir != want || !strings.Contains(tc2.From, tc.from) {
			t.Errorf("%s: %s (from %s), want %s", tc.name, tc2.Dir, tc2.From, tc.want)
		}
	}
}

func TestResolveErrorsSayHowToGetOne(t *testing.T) {
	_, err := Resolve("", []string{"PATH=/nonexistent"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "build-rr.sh") || !strings.Contains(err.Error(), Env) {
		t.Fatalf("no toolchain: %v", err)
	}
	// A folder the user named is checked, never passed over.
	notOne := t.TempDir()
	_, err = Resolve(notOne, []string{Env + "=" + fakeTree(t)})
	if err == nil || !strings.Contains(err.Error(), "not a Rumprun toolchain") || !strings.Contains(err.Error(), "rumprun-bake is missing") {
		t.Fatalf("a folder that is not a toolchain: %v", err)
	}
	// A toolchain for another platform (xen) lacks the hw libraries.
	xen := fakeTree(t)
	os.RemoveAll(filepath.Join(xen, "rumprun-x86_64", "lib", "rumprun-hw"))
	if _, err := Resolve(xen, nil); err == nil || !strings.Contains(err.Error(), "for the hw platform") {
		t.Fatalf("a toolchain without hw: %v", err)
	}
}

func TestEnvironPutsTheToolchainFirst(t *testing.T) {
	tc := &Toolchain{Dir: "/opt/rumprun"}
	env := tc.Environ([]string{"PATH=/usr/bin", "HOME=/root", "RUMPRUN_WARNING_STFU=no"})
	want := []string{"PATH=/opt/rumprun/bin:/usr/bin", "RUMPRUN_WARNING_STFU=please", "HOME=/root"}
	if strings.Join(env, " ") != strings.Join(want, " ") {
		t.Errorf("Environ = %q, want %q", env, want)
	}
}

// The identity changes when the toolchain changes: a file rewritten (as
// relocate.sh or a rebuild does) or the folder moved.
func TestIdentity(t *testing.T) {
	for _, p := range backing {
		if _, err := os.Stat(p.program); err != nil {
			t.Skipf("%s missing (apt-get install gcc binutils)", p.program)
		}
	}
	ctx := context.Background()
	dir := fakeTree(t)
	tc, err := Resolve(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tc.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := tc.Identity(ctx); a != b {
		t.Fatalf("identity not stable: %s, then %s", a, b)
	}
	if !strings.Contains(a, "/usr/bin/cc ") || !strings.Contains(a, "/usr/bin/ld ") {
		t.Errorf("identity lacks the backing compiler and linker: %s", a)
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "bin", "rumprun-bake"), later, later)
	if b, _ := tc.Identity(ctx); a == b {
		t.Error("identity unchanged after rumprun-bake changed")
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := exec.Command("cp", "-a", dir, moved).Run(); err != nil {
		t.Fatal(err)
	}
	tc2, _ := Resolve(moved, nil)
	if b, _ := tc2.Identity(ctx); a == b {
		t.Error("identity unchanged for a copy elsewhere")
	}
}

package guest

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func goBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	return p
}

func TestSourceDigest(t *testing.T) {
	d := SourceDigest()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(d) {
		t.Fatalf("digest %q", d)
	}
	if d != SourceDigest() {
		t.Error("digest not stable")
	}
	names, err := sourceFiles()
	if err != nil {
		t.Fatal(err)
	}
	var haveMain, haveConfig bool
	for _, n := range names {
		haveMain = haveMain || n == "init/main_linux.go"
		haveConfig = haveConfig || n == "config.go"
	}
	if !haveMain || !haveConfig {
		t.Errorf("embedded files %v lack init/main_linux.go or config.go", names)
	}
}

// TestBuildStaticReproducible builds the init twice: a static ELF for
// linux/amd64, the same bytes both times.
func TestBuildStaticReproducible(t *testing.T) {
	goBin := goBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, out := range []string{a, b} {
		if err := Build(ctx, goBin, out); err != nil {
			t.Fatal(err)
		}
	}
	ab, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) {
		t.Error("two builds differ")
	}
	f, err := elf.NewFile(bytes.NewReader(ab))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("machine %v type %v, want EM_X86_64 ET_EXEC", f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("not static: has %v", p.Type)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".*.partial-*")); len(entries) > 0 {
		t.Errorf("left behind %v", entries)
	}
}

func TestBuildErrorNamesCommand(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "go")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'compile: something broke' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Build(context.Background(), fake, filepath.Join(dir, "init"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"build -trimpath", "./guest/init", "CGO_ENABLED=0", "something broke"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	err = Build(context.Background(), filepath.Join(dir, "nope"), filepath.Join(dir, "init"))
	if err == nil || !strings.Contains(err.Error(), "install Go") {
		t.Errorf("missing go: %v", err)
	}
}

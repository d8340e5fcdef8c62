package compile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

func writeApp(t *testing.T, main string) *lang.App {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644)
	return &lang.App{Name: "x", Source: dir, Language: "go"}
}

const okMain = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n"

func compileWith(t *testing.T, app *lang.App, cacheDir string) (*Result, error) {
	t.Helper()
	cs, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	return Compile(context.Background(), app, Options{Cache: cs, ToolVersion: "test"})
}

func TestGoBuildIsReproducibleAndCached(t *testing.T) {
	app := writeApp(t, okMain)
	r1, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := compileWith(t, app, t.TempDir()) // another machine's empty cache
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(filepath.Join(r1.Dir, RootfsDir, r1.Manifest.Program))
	b2, _ := os.ReadFile(filepath.Join(r2.Dir, RootfsDir, r2.Manifest.Program))
	if len(b1) == 0 || !bytes.Equal(b1, b2) {
		t.Fatalf("two builds of the same source differ (%d and %d bytes)", len(b1), len(b2))
	}
	if !bytes.HasPrefix(b1, []byte("\x7fELF")) {
		t.Fatal("the program is not an ELF file")
	}
	if r1.Manifest.Program != "/app/main" || !strings.Contains(r1.Manifest.Toolchain, `"GOVERSION":"go1.`) {
		t.Fatalf("manifest %+v", r1.Manifest)
	}
	cacheDir := t.TempDir()
	compileWith(t, app, cacheDir)
	again, err := compileWith(t, app, cacheDir)
	if err != nil || !again.Cached {
		t.Fatalf("second compile into one cache: cached=%v err=%v", again != nil && again.Cached, err)
	}
	os.WriteFile(filepath.Join(app.Source, "main.go"), []byte(strings.Replace(okMain, "hi", "hello", 1)), 0o644)
	edited, err := compileWith(t, app, cacheDir)
	if err != nil || edited.Cached || edited.Manifest.Key == again.Manifest.Key {
		t.Fatalf("an edit must recompile: cached=%v err=%v", edited != nil && edited.Cached, err)
	}
}

func TestCompileErrorShowsCompilerOutput(t *testing.T) {
	app := writeApp(t, "package main\n\nfunc main() { undefinedThing() }\n")
	_, err := compileWith(t, app, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "undefined: undefinedThing") || !strings.Contains(err.Error(), "main.go:3") {
		t.Fatalf("want the compiler's message with its position, got %v", err)
	}
}

func TestMissingGoAndUnsupportedLanguage(t *testing.T) {
	app := writeApp(t, okMain)
	t.Setenv("PATH", t.TempDir())
	_, err := compileWith(t, app, t.TempDir())
	var nf *run.NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "install Go") {
		t.Fatalf("want a NotFoundError saying how to install Go, got %v", err)
	}
	app.Language = "cobol"
	_, err = compileWith(t, app, t.TempDir())
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "supported: c, cpp, elf, go") {
		t.Fatalf("want an UnsupportedError, got %v", err)
	}
}

func TestKeyCoversCompilerSettingsAndLocalReplaces(t *testing.T) {
	dir := t.TempDir()
	app := &lang.App{Name: "x", Source: filepath.Join(dir, "app"), Language: "go"}
	os.MkdirAll(app.Source, 0o755)
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(app.Source, "go.mod"), []byte("module example.com/x\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n"), 0o644)
	os.WriteFile(filepath.Join(app.Source, "main.go"), []byte("package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.V) }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lib", "go.mod"), []byte("module example.com/lib\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lib", "lib.go"), []byte("package lib\n\nconst V = \"v1\"\n"), 0o644)
	cacheDir := t.TempDir()
	first, err := compileWith(t, app, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "lib", "lib.go"), []byte("package lib\n\nconst V = \"v2\"\n"), 0o644)
	second, err := compileWith(t, app, cacheDir)
	if err != nil || second.Cached || second.Manifest.Key == first.Manifest.Key {
		t.Fatalf("an edit in a replaced module must recompile: cached=%v err=%v", second != nil && second.Cached, err)
	}
	t.Setenv("GOAMD64", "v3")
	third, err := compileWith(t, app, cacheDir)
	if err != nil || third.Cached {
		t.Fatalf("GOAMD64 changes the binary, so it must recompile: cached=%v err=%v", third != nil && third.Cached, err)
	}
}

func TestParentGoWorkIsIgnored(t *testing.T) {
	app := writeApp(t, okMain)
	// A go.work above the app that does not list it would break the build
	// if it were honoured.
	os.WriteFile(filepath.Join(filepath.Dir(app.Source), "go.work"), []byte("go 1.22\n\nuse ./elsewhere\n"), 0o644)
	if _, err := compileWith(t, app, t.TempDir()); err != nil {
		t.Fatalf("a go.work outside the build context must not matter: %v", err)
	}
}

// What `go env` says is kept in the cache across runs (each run has its
// own Memo), so a rebuild does not start `go env` again; a new go binary
// is asked again.
func TestGoToolchainIdentityIsKeptAcrossRuns(t *testing.T) {
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go in PATH")
	}
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls")
	wrapper := filepath.Join(bin, "go")
	write := func(tag string) {
		script := "#!/bin/sh\n# " + tag + "\necho \"$1\" >> " + log + "\nexec " + realGo + " \"$@\"\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	time.Sleep(cache.RacyWindow + 100*time.Millisecond) // a just-written go is not trusted
	app := writeApp(t, okMain)
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	envCalls := func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "env\n")
	}
	for i := range 2 {
		os.WriteFile(filepath.Join(app.Source, "main.go"), []byte(strings.Replace(okMain, "hi", fmt.Sprint("hi ", i), 1)), 0o644)
		if _, err := Compile(context.Background(), app, Options{Cache: cs, ToolVersion: "test", Memo: &Memo{}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := envCalls(); n != 1 {
		t.Fatalf("go env ran %d times in two runs with the same go, want once", n)
	}
	write("second, a longer script")
	if _, err := Compile(context.Background(), app, Options{Cache: cs, ToolVersion: "test", Memo: &Memo{}}); err != nil {
		t.Fatal(err)
	}
	if n := envCalls(); n != 2 {
		t.Errorf("go env ran %d times, want a second time after go changed", n)
	}
}

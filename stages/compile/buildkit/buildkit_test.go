package buildkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
)

// The daemons the tests here share, started by the first test that needs
// them: a registry holding the builder image, and buildkitd. Tests that
// wipe buildkitd start their own.
var (
	missing  = testenv.Missing() // why the daemons cannot run here
	setup    sync.Once
	setupErr error
	registry *testenv.Registry
	bk       *testenv.BuildKit
	builder  string // the Go builder image in registry
	tmpRoot  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if bk != nil {
		bk.Stop()
	}
	if registry != nil {
		registry.Stop()
	}
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

func startDaemons() error {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "unikfile-buildkit-"); err != nil {
		return err
	}
	if registry, err = testenv.StartRegistry(mkdir(filepath.Join(tmpRoot, "registry"))); err != nil {
		return err
	}
	if bk, err = testenv.StartBuildKit(mkdir(filepath.Join(tmpRoot, "buildkit"))); err != nil {
		return err
	}
	builder = registry.Addr + "/unikfile/go:" + testenv.GoVersion()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return testenv.PushGoBuilder(ctx, bk.Addr, builder)
}

func mkdir(p string) string {
	if err := os.MkdirAll(p, 0o755); err != nil {
		panic(err)
	}
	return p
}

func needDaemons(t *testing.T) {
	t.Helper()
	if missing != "" {
		t.Skip(missing)
	}
	setup.Do(func() { setupErr = startDaemons() })
	if setupErr != nil {
		t.Fatalf("starting buildkitd and the registry: %v", setupErr)
	}
}

// helloApp writes a small Go HTTP server and returns its app.
func helloApp(t *testing.T, main string) *lang.App {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.22\n",
		"main.go": main,
		// Ignored, so neither in the key nor sent to buildkitd.
		".unikignore":       "notes/\n",
		"notes/scratch.txt": "not part of the build",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &lang.App{Name: "hello", Source: dir, Language: "go", Base: "linux", Builder: builder}
}

const helloMain = `package main

import (
	"fmt"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello from buildkit") })
	http.ListenAndServe(":8080", nil)
}
`

func openCache(t *testing.T) *cache.Store {
	t.Helper()
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func selectBuildKit(t *testing.T, s Settings) *Executor {
	t.Helper()
	s.Executor = "buildkit"
	ex, note, err := Select(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, s.Host) {
		t.Errorf("note %q does not name the host %s", note, s.Host)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func program(t *testing.T, r *compile.Result) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.Dir, compile.RootfsDir, r.Manifest.Program))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The bundle BuildKit compiles is bit-identical to the local executor's
// (same toolchain, same flags), and a second compile is a cache hit in
// unikfile's cache.
func TestBuildKitBundleMatchesLocal(t *testing.T) {
	needDaemons(t)
	app := helloApp(t, helloMain)
	ex := selectBuildKit(t, Settings{Host: bk.Addr})
	ctx := context.Background()
	var lines []string
	var mu sync.Mutex
	out, err := ex.CompileOutcome(ctx, app, Options{Cache: openCache(t), ToolVersion: "test", Progress: func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Cached || out.StepCached {
		t.Errorf("first compile in a fresh cache: Cached=%v StepCached=%v", out.Cached, out.StepCached)
	}
	if !strings.Contains(out.Builder, "@sha256:") {
		t.Errorf("builder %q is not pinned to a digest", out.Builder)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "[hello] go build") {
		t.Errorf("BuildKit's progress does not show the compile step:\n%s", strings.Join(lines, "\n"))
	}
	local, err := compile.Compile(ctx, app, compile.Options{Cache: openCache(t), ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Manifest.Program != local.Manifest.Program {
		t.Fatalf("program %s, local %s", out.Manifest.Program, local.Manifest.Program)
	}
	bkBin, localBin := program(t, out.Result), program(t, local)
	if !bytes.Equal(bkBin, localBin) {
		t.Fatalf("BuildKit's binary (%d bytes) differs from the local executor's (%d bytes)", len(bkBin), len(localBin))
	}
	// The ignored folder never reached buildkitd, so the key is the local one's source digest.
	again, err := ex.CompileOutcome(ctx, app, Options{Cache: openCache(t), ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.StepCached {
		t.Error("a second compile of unchanged source on the same buildkitd ran the compiler again")
	}
}

// Several apps compile at once on one client.
func TestBuildKitParallelSolves(t *testing.T) {
	needDaemons(t)
	ex := selectBuildKit(t, Settings{Host: bk.Addr})
	store := openCache(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		app := helloApp(t, strings.Replace(helloMain, "hello from buildkit", fmt.Sprintf("hello %d", i), 1))
		app.Name = fmt.Sprintf("app%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := ex.CompileOutcome(context.Background(), app, Options{Cache: store, ToolVersion: "test"})
			if err == nil && !bytes.Contains(program(t, out.Result), []byte(fmt.Sprintf("hello %d", i))) {
				err = fmt.Errorf("app%d's binary does not hold its own message", i)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// A compile error shows the compiler's own message with file and line.
func TestBuildKitCompileErrorShowsCompilerOutput(t *testing.T) {
	needDaemons(t)
	app := helloApp(t, "package main\n\nfunc main() {\n\tundefinedThing()\n}\n")
	ex := selectBuildKit(t, Settings{Host: bk.Addr})
	_, err := ex.CompileOutcome(context.Background(), app, Options{Cache: openCache(t), ToolVersion: "test"})
	if err == nil {
		t.Fatal("compile of broken source succeeded")
	}
	for _, want := range []string{"./main.go:4:2: undefined: undefinedThing", "go build of app hello failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// A builder image that does not exist is named, with what to do.
func TestBuildKitMissingBuilderImage(t *testing.T) {
	needDaemons(t)
	app := helloApp(t, helloMain)
	app.Builder = registry.Addr + "/unikfile/no-such-image:1"
	ex := selectBuildKit(t, Settings{Host: bk.Addr})
	_, err := ex.CompileOutcome(context.Background(), app, Options{Cache: openCache(t), ToolVersion: "test"})
	if err == nil {
		t.Fatal("compile with a missing builder image succeeded")
	}
	for _, want := range []string{"builder image " + app.Builder, "cannot resolve it", `builder = "IMAGE" in app "hello"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// An address where nothing listens fails fast and says what to do; auto
// falls back to the local executor and says so.
func TestUnreachableBuildKit(t *testing.T) {
	for _, host := range []string{"unix://" + filepath.Join(t.TempDir(), "none.sock"), "tcp://127.0.0.1:1"} {
		_, _, err := Select(context.Background(), Settings{Executor: "buildkit", Host: host})
		var ue *UnreachableError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: err = %v; want an UnreachableError", host, err)
		}
		// Fast: the cause is the refused connection, not a timeout.
		if strings.Contains(err.Error(), "no answer within") || !strings.Contains(err.Error(), map[bool]string{true: "no such file or directory", false: "connection refused"}[strings.HasPrefix(host, "unix")]) {
			t.Errorf("%s: error does not give the cause:\n%v", host, err)
		}
		for _, want := range []string{"no buildkitd answers at " + host, "--executor local", HostEnv} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not say %q:\n%v", host, want, err)
			}
		}
		ex, note, err := Select(context.Background(), Settings{Executor: "auto", Host: host})
		if err != nil || ex != nil {
			t.Fatalf("auto with nothing at %s: executor %v, err %v; want the local executor", host, ex, err)
		}
		if !strings.Contains(note, "compiling with the local toolchain") || !strings.Contains(note, host) {
			t.Errorf("auto's note %q does not say it falls back to local", note)
		}
	}
}

// auto uses a buildkitd that answers.
func TestAutoUsesBuildKit(t *testing.T) {
	needDaemons(t)
	ex, note, err := Select(context.Background(), Settings{Executor: "auto", Host: bk.Addr})
	if err != nil || ex == nil {
		t.Fatalf("auto with buildkitd at %s: executor %v, err %v", bk.Addr, ex, err)
	}
	defer ex.Close()
	if !strings.Contains(note, "compiling with BuildKit") {
		t.Errorf("note %q", note)
	}
}

// Remote cache: a build exports its cache to the registry; buildkitd's state
// and unikfile's cache are wiped (a new machine); the next build imports the
// cache and BuildKit does not run the compiler. The same holds for a local
// cache folder.
func TestRemoteCacheAcrossMachines(t *testing.T) {
	needDaemons(t)
	own, err := testenv.StartBuildKit(mkdir(filepath.Join(t.TempDir(), "bk")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Stop() })
	app := helloApp(t, strings.Replace(helloMain, "hello from buildkit", "hello from the remote cache", 1))
	ref := registry.Addr + "/unikfile/cache:hello"
	localCache := filepath.Join(t.TempDir(), "buildcache")
	ctx := context.Background()

	first := selectBuildKit(t, Settings{Host: own.Addr, CacheTo: []lang.CacheSpec{
		{Type: "registry", Attrs: map[string]string{"ref": ref, "mode": "max", "registry.insecure": "true"}},
		{Type: "local", Attrs: map[string]string{"dest": localCache, "mode": "max"}},
	}})
	out1, err := first.CompileOutcome(ctx, app, Options{Cache: openCache(t), ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if out1.StepCached {
		t.Fatal("the first build on a fresh buildkitd was a BuildKit cache hit")
	}
	first.Close()

	for _, from := range []lang.CacheSpec{
		{Type: "registry", Attrs: map[string]string{"ref": ref, "registry.insecure": "true"}},
		{Type: "local", Attrs: map[string]string{"src": localCache}},
	} {
		if own, err = own.Restart(); err != nil {
			t.Fatal(err)
		}
		ex := selectBuildKit(t, Settings{Host: own.Addr, CacheFrom: []lang.CacheSpec{from}})
		out, err := ex.CompileOutcome(ctx, app, Options{Cache: openCache(t), ToolVersion: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if out.Cached {
			t.Fatalf("%s: the bundle came from unikfile's cache, which was new", from.Type)
		}
		if !out.StepCached {
			t.Errorf("cache_from type=%s: buildkitd with wiped state ran the compiler instead of using the imported cache", from.Type)
		}
		if !bytes.Equal(program(t, out.Result), program(t, out1.Result)) {
			t.Errorf("cache_from type=%s: the binary differs from the one that was cached", from.Type)
		}
	}
}

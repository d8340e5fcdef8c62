package buildkit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
)

// The offline builder images (Debian's toolchains), made once per machine.
var (
	buildersOnce sync.Once
	buildersErr  error
	builders     *testenv.Builders
)

func needBuilders(t *testing.T) *testenv.Builders {
	t.Helper()
	if raceRun {
		t.Skip("under the race detector: these tests only run toolchains in builder images; the full run compiles every language")
	}
	if why := testenv.MissingBuilders(); why != "" {
		t.Skip(why)
	}
	needDaemons(t)
	buildersOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
		defer cancel()
		builders, buildersErr = testenv.StartBuilders(ctx, bk.Addr, mkdir(filepath.Join(tmpRoot, "builders")))
	})
	if buildersErr != nil {
		t.Fatal(buildersErr)
	}
	return builders
}

// exampleApp is examples/<dir> as an app of language, compiled in the
// offline builder image.
func exampleApp(t *testing.T, b *testenv.Builders, language, dir string) *lang.App {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "..", "examples", dir))
	if err != nil {
		t.Fatal(err)
	}
	return &lang.App{Name: "x", Source: src, Language: language, Builder: b.For(language).Ref}
}

func file(t *testing.T, r *compile.Result, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.Dir, compile.RootfsDir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(r *compile.Result, p string) bool {
	_, err := os.Lstat(filepath.Join(r.Dir, compile.RootfsDir, filepath.FromSlash(p)))
	return err == nil
}

// hasLib reports whether the bundle has a library of Debian's multiarch
// folder, at the path the loader finds first (/lib, a link to /usr/lib in
// the image, is searched before /usr/lib).
func hasLib(r *compile.Result, name string) bool {
	return exists(r, "/lib/x86_64-linux-gnu/"+name) || exists(r, "/usr/lib/x86_64-linux-gnu/"+name)
}

// runPacked runs the bundle's program with only the bundle's loader and
// libraries, as the guest would.
func runPacked(t *testing.T, r *compile.Result, args ...string) string {
	t.Helper()
	root := filepath.Join(r.Dir, compile.RootfsDir)
	var libs []string
	for _, d := range []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "usr/local/lib", "usr/local/lib64"} {
		libs = append(libs, filepath.Join(root, d))
	}
	for _, e := range r.Manifest.Env {
		if v, ok := strings.CutPrefix(e, "LD_LIBRARY_PATH="); ok {
			for _, d := range strings.Split(v, ":") {
				libs = append(libs, filepath.Join(root, d))
			}
		}
	}
	cmd := exec.Command(filepath.Join(root, "lib", "x86_64-linux-gnu", "ld-linux-x86-64.so.2"), append([]string{"--inhibit-cache", "--library-path", strings.Join(libs, ":"),
		filepath.Join(root, r.Manifest.Command()[0])}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the packed program does not run with the bundle's own libraries: %v\n%s", err, out)
	}
	return string(out)
}

func compileBK(t *testing.T, app *lang.App) *Outcome {
	t.Helper()
	ex := selectBuildKit(t, Settings{Host: bk.Addr})
	out, err := ex.CompileOutcome(context.Background(), app, Options{Cache: openCache(t), ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Builder, "@sha256:") {
		t.Errorf("builder %q is not pinned to a digest", out.Builder)
	}
	return out
}

// A static C program compiled in the builder image is the local
// executor's, byte for byte, when the image's toolchain is the host's.
func TestBuildKitStaticCMatchesLocal(t *testing.T) {
	b := needBuilders(t)
	app := exampleApp(t, b, "c", "c")
	out := compileBK(t, app)
	prog := file(t, out.Result, compile.NativeProgram)
	if out.Manifest.Program != compile.NativeProgram || len(out.Manifest.Env) != 0 || exists(out.Result, "/lib64") {
		t.Errorf("a static program's bundle: %+v (lib64 packed: %v)", out.Manifest, exists(out.Result, "/lib64"))
	}
	host := testenv.HostVersions(testenv.CToolchainPackages)
	img := b.For("c").VersionsOf(testenv.CToolchainPackages)
	if host != img {
		t.Logf("the builder's C toolchain is not the host's, so the binaries may differ; not compared:\nhost:\n%sbuilder:\n%s", host, img)
		return
	}
	local, err := compile.Compile(context.Background(), app, compile.Options{Cache: openCache(t), ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if lb := file(t, local, compile.NativeProgram); !bytes.Equal(prog, lb) {
		t.Fatalf("BuildKit's static C program (%d bytes) differs from the local executor's (%d bytes), with the same toolchain:\n%s", len(prog), len(lb), host)
	}
}

// Dynamic programs and interpreters get their libraries from the builder
// image, not from the host: the bundle runs with nothing but itself.
func TestBuildKitLanguagesPackTheImagesLibraries(t *testing.T) {
	b := needBuilders(t)
	t.Run("cpp", func(t *testing.T) {
		out := compileBK(t, exampleApp(t, b, "cpp", "cpp"))
		if !hasLib(out.Result, "libstdc++.so.6") {
			t.Fatalf("the C++ program's libstdc++ is not in the bundle:\n%s", listing(out.Result))
		}
		if out.Manifest.Dir != compile.AppDir {
			t.Errorf("manifest %+v", out.Manifest)
		}
	})
	t.Run("rust", func(t *testing.T) {
		out := compileBK(t, exampleApp(t, b, "rust", "rust"))
		if !exists(out.Result, "/lib64/ld-linux-x86-64.so.2") || !exists(out.Result, compile.NativeProgram) {
			t.Fatal("the Rust program or its loader is missing")
		}
	})
	t.Run("python", func(t *testing.T) {
		out := compileBK(t, exampleApp(t, b, "python", "python"))
		argv := out.Manifest.Command()
		// Debian's interpreter of the image, whatever the host's python3 is.
		if len(argv) != 2 || argv[0] != "/usr/bin/python3.11" || argv[1] != "/app/main.py" {
			t.Fatalf("argv %q", argv)
		}
		for _, p := range []string{"/usr/lib/python3.11/http/server.py", "/usr/lib/python3.11/http/__pycache__/server.cpython-311.pyc", "/app/__pycache__/main.cpython-311.pyc"} {
			if !exists(out.Result, p) {
				t.Errorf("%s missing from the bundle", p)
			}
		}
		for _, p := range []string{"/usr/lib/python3.11/test", "/usr/lib/python3.11/ensurepip"} {
			if exists(out.Result, p) {
				t.Errorf("%s should have been left out", p)
			}
		}
		if got := runPacked(t, out.Result, "-c", "import sys, http.server; print(sys.version)"); !strings.HasPrefix(got, "3.11.") {
			t.Errorf("the packed interpreter says %q", got)
		}
	})
	t.Run("node", func(t *testing.T) {
		out := compileBK(t, exampleApp(t, b, "node", "node"))
		argv := out.Manifest.Command()
		if len(argv) != 2 || argv[0] != "/usr/bin/node" || argv[1] != "/app/server.js" {
			t.Fatalf("argv %q", argv)
		}
		// Debian's node is linked against libnode, which the host's node
		// (if any) need not have: it came from the image.
		if !hasLib(out.Result, "libnode.so.108") {
			t.Error("libnode from the builder image is missing")
		}
		want := strings.TrimPrefix(strings.TrimSpace(b.For("node").VersionsOf([]string{"nodejs"})), "nodejs=")
		if got := runPacked(t, out.Result, "--version"); !strings.HasPrefix(want, strings.TrimPrefix(strings.TrimSpace(got), "v")) {
			t.Errorf("the packed node is %q; the builder's nodejs is %s", got, want)
		}
		// Debian's node loads some builtins from /usr/share/nodejs at start;
		// the bundle has them (the host has no such folder, or another node's).
		if !exists(out.Result, "/usr/share/nodejs/cjs-module-lexer/lexer.js") {
			t.Errorf("node's externalized builtins are missing:\n%s", listing(out.Result))
		}
	})
	t.Run("java", func(t *testing.T) {
		out := compileBK(t, exampleApp(t, b, "java", "java"))
		rel := string(file(t, out.Result, compile.JavaRuntime+"/release"))
		if !strings.Contains(rel, `"java.base jdk.httpserver"`) && !strings.Contains(rel, "jdk.httpserver") {
			t.Errorf("the runtime's modules:\n%s", rel)
		}
		ver := b.For("java").VersionsOf([]string{"openjdk-17-jdk-headless"})
		if v, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(ver), "openjdk-17-jdk-headless="), "+"); !strings.Contains(rel, `JAVA_VERSION="`+v) {
			t.Errorf("the runtime is not the builder's JDK (%s):\n%s", ver, rel)
		}
		if got := runPacked(t, out.Result, "-version"); !strings.Contains(got, "17.0.") {
			t.Errorf("java -version: %s", got)
		}
	})
}

// Errors in a recipe name what to do.
func TestBuildKitRecipeErrors(t *testing.T) {
	b := needBuilders(t)
	ex := selectBuildKit(t, Settings{Host: bk.Addr})
	compileErr := func(app *lang.App) error {
		_, err := ex.CompileOutcome(context.Background(), app, Options{Cache: openCache(t), ToolVersion: "test"})
		if err == nil {
			t.Fatalf("compile of %s succeeded", app.Source)
		}
		return err
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.c"), []byte("int main(void) { return undefined_thing; }\n"), 0o644)
	err := compileErr(&lang.App{Name: "broken", Source: dir, Language: "c", Builder: b.For("c").Ref})
	for _, want := range []string{"c build of app broken failed", "main.c:1:", "undefined_thing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	// A builder without the language's toolchain: the Python image has no cmake.
	os.WriteFile(filepath.Join(dir, "CMakeLists.txt"), []byte("project(x C)\nadd_executable(x main.c)\n"), 0o644)
	err = compileErr(&lang.App{Name: "nocmake", Source: dir, Language: "c", Builder: b.For("python").Ref})
	if !strings.Contains(err.Error(), "the builder image has no") || !strings.Contains(err.Error(), `builder = \"IMAGE\"`) && !strings.Contains(err.Error(), `builder = "IMAGE"`) {
		t.Errorf("a builder without a compiler: %v", err)
	}
	// A recipe's own verdict, before anything runs: no entry point.
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "lib.py"), []byte("x = 1\n"), 0o644)
	err = compileErr(&lang.App{Name: "noentry", Source: empty, Language: "python", Builder: b.For("python").Ref})
	if !strings.Contains(err.Error(), "no entry point in "+empty) || strings.Contains(err.Error(), "failed in builder image") {
		t.Errorf("no entry point: %v", err)
	}
	// A Makefile that builds two programs.
	two := t.TempDir()
	os.WriteFile(filepath.Join(two, "a.c"), []byte("int main(void) { return 0; }\n"), 0o644)
	os.WriteFile(filepath.Join(two, "Makefile"), []byte("all: srv tool\nsrv: a.c\n\t$(CC) -o srv a.c\ntool: a.c\n\t$(CC) -o tool a.c\n"), 0o644)
	err = compileErr(&lang.App{Name: "two", Source: two, Language: "c", Builder: b.For("c").Ref})
	if !strings.Contains(err.Error(), "the build produced several programs (srv, tool)") {
		t.Errorf("two programs: %v", err)
	}
}

// listing lists the bundle's files.
func listing(r *compile.Result) string {
	var b strings.Builder
	root := filepath.Join(r.Dir, compile.RootfsDir)
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			b.WriteString("/" + rel + "\n")
		}
		return nil
	})
	return b.String()
}

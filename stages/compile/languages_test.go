package compile

import (
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
)

// These tests build the examples with the real toolchains that
// scripts/install-deps installs from Debian.

func example(t *testing.T, language, dir, main string) *lang.App {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "examples", dir))
	if err != nil {
		t.Fatal(err)
	}
	return &lang.App{Name: "x", Source: src, Language: language, Main: main}
}

// treeDigest is a digest of every path, link target and file in dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		fi, _ := os.Lstat(p)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(h, "L %s %s\n", rel, l)
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			fmt.Fprintf(h, "F %s %o %x\n", rel, fi.Mode().Perm()&0o111, sha256.Sum256(b))
		default:
			fmt.Fprintf(h, "D %s\n", rel)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func rootfsPath(r *Result, p string) string {
	return filepath.Join(r.Dir, RootfsDir, filepath.FromSlash(p))
}

func interp(t *testing.T, file string) string {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			p.ReadAt(b, 0)
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

func TestCSourcesBuildStaticAndReproducible(t *testing.T) {
	app := example(t, "c", "c", "")
	r1, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if r1.Manifest.Program != "/app/main" || treeDigest(t, filepath.Join(r1.Dir, RootfsDir)) != treeDigest(t, filepath.Join(r2.Dir, RootfsDir)) {
		t.Fatalf("two builds differ (program %s)", r1.Manifest.Program)
	}
	if i := interp(t, rootfsPath(r1, "/app/main")); i != "" {
		t.Fatalf("the program should be static, has interpreter %s", i)
	}
	// Run it on a port that is taken: it must start, then fail to listen.
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := exec.Command(rootfsPath(r1, "/app/main"), strconv.Itoa(l.Addr().(*net.TCPAddr).Port)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "listen") {
		t.Fatalf("the program does not run as built: %v %s", err, out)
	}
}

func TestCppCMakeIsDynamicWithItsLibraries(t *testing.T) {
	r, err := compileWith(t, example(t, "cpp", "cpp", ""), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	again, err := compileWith(t, example(t, "cpp", "cpp", ""), t.TempDir())
	if err != nil || treeDigest(t, filepath.Join(r.Dir, RootfsDir)) != treeDigest(t, filepath.Join(again.Dir, RootfsDir)) {
		t.Fatalf("two CMake builds differ (err %v)", err)
	}
	loader := interp(t, rootfsPath(r, "/app/main"))
	if loader == "" {
		t.Fatal("CMake's build is dynamic; the program has no interpreter")
	}
	for _, p := range []string{loader, "/lib/x86_64-linux-gnu/libstdc++.so.6", "/etc/nsswitch.conf", "/etc/passwd"} {
		if _, err := os.Stat(rootfsPath(r, p)); err != nil {
			t.Errorf("bundle lacks %s: %v", p, err)
		}
	}
}

func TestMakefileAndCompileError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Makefile"), []byte("all: srv tool\nsrv: a.c\n\t$(CC) $(CFLAGS) -o srv a.c\ntool: a.c\n\t$(CC) $(CFLAGS) -o tool a.c\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.c"), []byte("int main(void) { return 0; }\n"), 0o644)
	app := &lang.App{Name: "m", Source: dir, Language: "c"}
	_, err := compileWith(t, app, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "several programs (srv, tool)") || !strings.Contains(err.Error(), `main = "PATH"`) {
		t.Fatalf("want a request to choose main, got %v", err)
	}
	app.Main = "srv"
	if _, err := compileWith(t, app, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "srv")); err == nil {
		t.Error("make wrote into the source folder")
	}
	os.WriteFile(filepath.Join(dir, "a.c"), []byte("int main(void) { return undefined_thing; }\n"), 0o644)
	_, err = compileWith(t, app, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "undefined_thing") || !strings.Contains(err.Error(), "a.c:1") {
		t.Fatalf("want the compiler's message, got %v", err)
	}
}

func TestRustCargoRelease(t *testing.T) {
	app := example(t, "rust", "rust", "")
	r, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rootfsPath(r, "/app/main")); err != nil {
		t.Fatal(err)
	}
	again, err := compileWith(t, app, t.TempDir())
	if err != nil || treeDigest(t, filepath.Join(r.Dir, RootfsDir)) != treeDigest(t, filepath.Join(again.Dir, RootfsDir)) {
		t.Fatalf("two cargo builds differ (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(app.Source, "target")); err == nil {
		t.Error("cargo wrote target/ into the source folder")
	}
	if !strings.Contains(r.Manifest.Toolchain, "rustc") {
		t.Errorf("toolchain %q lacks rustc's version", r.Manifest.Toolchain)
	}
}

func TestPythonBundleIsReproducibleWithByteCode(t *testing.T) {
	app := example(t, "python", "python", "")
	r1, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	argv := r1.Manifest.Command()
	if len(argv) != 2 || argv[1] != "/app/main.py" || !filepath.IsAbs(argv[0]) {
		t.Fatalf("argv %v", argv)
	}
	if _, err := os.Stat(rootfsPath(r1, argv[0])); err != nil {
		t.Fatalf("the interpreter is not in the bundle: %v", err)
	}
	var pycs, tests int
	filepath.WalkDir(filepath.Join(r1.Dir, RootfsDir), func(p string, d fs.DirEntry, err error) error {
		if strings.HasSuffix(p, "/http/__pycache__") {
			pycs++
		}
		if d.IsDir() && (d.Name() == "test" || d.Name() == "idlelib" || d.Name() == "tkinter") {
			tests++
		}
		return nil
	})
	if pycs != 1 || tests != 0 {
		t.Fatalf("want byte code for http and no test/idlelib/tkinter: %d, %d", pycs, tests)
	}
	r2, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if treeDigest(t, filepath.Join(r1.Dir, RootfsDir)) != treeDigest(t, filepath.Join(r2.Dir, RootfsDir)) {
		t.Fatal("two builds of the Python bundle differ")
	}
	// The packed interpreter runs the app's code from the bundle alone:
	// its standard library is found next to it.
	out, err := exec.Command(filepath.Join(r1.Dir, RootfsDir, argv[0]), "-c", "import http.server, sys; print(sys.prefix)").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestNodeWithLockRunsNpmCi(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"n","version":"1.0.0","main":"srv.js"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "package-lock.json"), []byte(`{"name":"n","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"n","version":"1.0.0"}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "srv.js"), []byte("console.log('hi')\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "node_modules", "stale"), 0o755)
	os.WriteFile(filepath.Join(dir, "node_modules", "stale", "index.js"), []byte("x"), 0o644)
	r, err := compileWith(t, &lang.App{Name: "n", Source: dir, Language: "node"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	argv := r.Manifest.Command()
	if len(argv) != 2 || argv[1] != "/app/srv.js" {
		t.Fatalf("argv %v", argv)
	}
	if _, err := os.Stat(rootfsPath(r, "/app/node_modules/stale")); err == nil {
		t.Error("with a lock file, node_modules must come from npm ci, not the source")
	}
	if interp(t, rootfsPath(r, argv[0])) == "" {
		t.Log("node is static")
	}
}

func TestJavaJlinkRuntime(t *testing.T) {
	r, err := compileWith(t, example(t, "java", "java", "Main"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(rootfsPath(r, "/opt/java/release"))
	if err != nil || !strings.Contains(string(b), "jdk.httpserver") {
		t.Fatalf("the runtime should hold jdk.httpserver (from jdeps): %q %v", b, err)
	}
	if _, err := os.Stat(rootfsPath(r, "/app/classes/Main.class")); err != nil {
		t.Fatal(err)
	}
	if r.Manifest.MemoryMiB < 256 {
		t.Errorf("a JVM needs more memory than the default, got %d", r.Manifest.MemoryMiB)
	}
	// The runtime has its class-data-sharing archive, and the JVM maps
	// it: with -Xshare:on a JVM that cannot use it does not start. The
	// launch's own options map it where it was dumped.
	if _, err := os.Stat(rootfsPath(r, "/opt/java/lib/server/classes.jsa")); err != nil {
		t.Fatalf("the runtime has no CDS archive: %v", err)
	}
	argv := r.Manifest.Command()
	if !slices.Contains(argv, "-XX:ArchiveRelocationMode=0") {
		t.Errorf("the launch %q does not map the archive where it was dumped", argv)
	}
	var opts []string
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "-XX:") {
			opts = append(opts, a)
		}
	}
	java := rootfsPath(r, "/opt/java/bin/java")
	out, err := exec.Command(java, append(append(opts, "-Xshare:on", "-Xlog:cds=info"), "-version")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s -Xshare:on: %v\n%s", java, err, out)
	}
	if !strings.Contains(string(out), "Mapped static") || strings.Contains(string(out), "alternative address") {
		t.Errorf("the archive is not mapped where it was dumped:\n%s", out)
	}
}

func TestParseJavaVersion(t *testing.T) {
	for release, want := range map[string]int{
		"IMPLEMENTOR=\"Debian\"\nJAVA_VERSION=\"17.0.15\"\nMODULES=\"java.base\"\n": 17,
		"JAVA_VERSION=\"21\"":        21,
		"JAVA_VERSION=\"1.8.0_402\"": 8,
		"MODULES=\"java.base\"":      0,
	} {
		if got := ParseJavaVersion(release); got != want {
			t.Errorf("ParseJavaVersion(%q) = %d, want %d", release, got, want)
		}
	}
}

func TestElfBringsItsLibrariesOrSaysWhichIsMissing(t *testing.T) {
	dir := t.TempDir()
	libDir := t.TempDir()
	gcc := func(args ...string) {
		if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, b)
		}
	}
	os.WriteFile(filepath.Join(libDir, "g.c"), []byte("int greet(void) { return 7; }\n"), 0o644)
	gcc("-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-o", filepath.Join(libDir, "libgreet.so.1"), filepath.Join(libDir, "g.c"))
	os.Symlink("libgreet.so.1", filepath.Join(libDir, "libgreet.so"))
	os.WriteFile(filepath.Join(libDir, "m.c"), []byte("int greet(void);\nint main(void) { return greet(); }\n"), 0o644)
	gcc("-o", filepath.Join(dir, "prog"), filepath.Join(libDir, "m.c"), "-L"+libDir, "-lgreet", "-Wl,-rpath,"+libDir)

	app := &lang.App{Name: "e", Source: dir, Language: "elf"}
	if _, err := compileWith(t, app, t.TempDir()); err == nil || !strings.Contains(err.Error(), `needs main = "PATH"`) {
		t.Fatalf("want a request for main, got %v", err)
	}
	app.Main = "prog"
	r, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.Program != "/app/prog" {
		t.Fatalf("program %s", r.Manifest.Program)
	}
	if _, err := os.Stat(rootfsPath(r, libDir+"/libgreet.so.1")); err != nil {
		t.Fatal(err)
	}
	// Hide the library: the build says which library and who needs it.
	os.Rename(filepath.Join(libDir, "libgreet.so.1"), filepath.Join(libDir, "gone"))
	os.WriteFile(filepath.Join(dir, "touch"), []byte("1"), 0o644) // a new key
	_, err = compileWith(t, app, t.TempDir())
	var me *elfdeps.MissingError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "shared library libgreet.so.1, needed by /app/prog, was not found") {
		t.Fatalf("want a MissingError naming libgreet.so.1 and /app/prog, got %v", err)
	}
	app.Main = "touch"
	if _, err := compileWith(t, app, t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not an ELF program") {
		t.Fatalf("want a refusal of a non-ELF main, got %v", err)
	}
}

func TestMissingToolchainsSayHowToInstall(t *testing.T) {
	cases := []struct {
		app  *lang.App
		want string
	}{
		{example(t, "c", "c", ""), "gcc not found in PATH; install a C compiler: apt-get install gcc"},
		{example(t, "cpp", "cpp", ""), "g++ not found in PATH; install a C++ compiler: apt-get install g++"},
		{example(t, "rust", "rust", ""), "cargo not found in PATH; install Rust: apt-get install cargo"},
		{example(t, "python", "python", ""), "python3 not found in PATH; install Python 3: apt-get install python3"},
		{example(t, "node", "node", ""), "node not found in PATH; install Node.js: apt-get install nodejs"},
		{example(t, "java", "java", "Main"), "javac not found in PATH; install a JDK: apt-get install openjdk-17-jdk-headless"},
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CC", "")
	t.Setenv("CXX", "")
	for _, c := range cases {
		_, err := compileWith(t, c.app, t.TempDir())
		var nf *run.NotFoundError
		if !errors.As(err, &nf) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", c.app.Language, c.want, err)
		}
	}
}

func TestCMakeMissingWhenTheProjectNeedsIt(t *testing.T) {
	gcc, err := exec.LookPath("g++")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH with the compiler but without cmake.
	bin := t.TempDir()
	os.Symlink(gcc, filepath.Join(bin, "g++"))
	t.Setenv("PATH", bin)
	_, err = compileWith(t, example(t, "cpp", "cpp", ""), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "cmake not found in PATH; install CMake: apt-get install cmake") {
		t.Fatalf("got %v", err)
	}
}

func TestJDKWithoutJlinkIsNamed(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "bin"), 0o755)
	os.WriteFile(filepath.Join(home, "bin", "javac"), []byte("#!/bin/sh\necho javac 17\n"), 0o755)
	t.Setenv("PATH", filepath.Join(home, "bin"))
	_, err := compileWith(t, example(t, "java", "java", "Main"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "has no bin/jlink") || !strings.Contains(err.Error(), "apt-get install openjdk-17-jdk-headless") {
		t.Fatalf("got %v", err)
	}
}

func TestCompilerFlagsAreInTheKey(t *testing.T) {
	app := example(t, "c", "c", "")
	cacheDir := t.TempDir()
	if _, err := compileWith(t, app, cacheDir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CFLAGS", "-O1")
	r, err := compileWith(t, app, cacheDir)
	if err != nil || r.Cached {
		t.Fatalf("CFLAGS changes the program, so it must recompile: cached=%v err=%v", r != nil && r.Cached, err)
	}
}

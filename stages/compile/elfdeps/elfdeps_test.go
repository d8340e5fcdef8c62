package elfdeps

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// build compiles a C file with gcc (a real toolchain; the tests need it).
func build(t *testing.T, out, src string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed (scripts/install-deps installs it)")
	}
	c := filepath.Join(t.TempDir(), "x.c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gcc", append([]string{"-o", out, c}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
}

const libSrc = "int greet(void) { return 42; }\n"
const mainSrc = "int greet(void);\nint main(void) { return greet() == 42 ? 0 : 1; }\n"

// program builds a program linked against libgreet.so.1 in libDir, with
// the extra link arguments, into root/app/prog.
func program(t *testing.T, root, libDir string, link ...string) {
	t.Helper()
	os.MkdirAll(libDir, 0o755)
	build(t, filepath.Join(libDir, "libgreet.so.1"), libSrc, "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1")
	os.Symlink("libgreet.so.1", filepath.Join(libDir, "libgreet.so"))
	os.MkdirAll(filepath.Join(root, "app"), 0o755)
	build(t, filepath.Join(root, "app", "prog"), mainSrc, append([]string{"-L" + libDir, "-lgreet"}, link...)...)
}

func exists(t *testing.T, root, ip string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(root, ip))
	return err == nil
}

func TestClosureHasLoaderLibcAndRunpathLibrary(t *testing.T) {
	root := t.TempDir()
	libDir := filepath.Join(t.TempDir(), "lib")
	program(t, root, libDir, "-Wl,-rpath,"+libDir)
	res, err := Pack(root, []string{"/app/prog"}, Options{ConfDirs: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Dynamic || len(res.LibraryPath) != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, ip := range []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", libDir + "/libgreet.so.1"} {
		if !exists(t, root, ip) {
			t.Errorf("%s missing from the bundle; added %v", ip, res.Added)
		}
	}
	// The loader link is a link, as on the host, and resolves in the bundle.
	if fi, err := os.Lstat(filepath.Join(root, "lib64/ld-linux-x86-64.so.2")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("/lib64/ld-linux-x86-64.so.2 should be a symbolic link: %v", err)
	}
	// The packed program runs with only the bundle's loader and libraries.
	out, err := exec.Command(filepath.Join(root, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		"--inhibit-cache", "--library-path", filepath.Join(root, "lib/x86_64-linux-gnu")+":"+filepath.Join(root, libDir),
		filepath.Join(root, "app/prog")).CombinedOutput()
	if err != nil {
		t.Fatalf("the packed program does not run: %v\n%s", err, out)
	}
	// Packing again adds nothing.
	again, err := Pack(root, []string{"/app/prog"}, Options{ConfDirs: []string{}})
	if err != nil || len(again.Added) != 0 {
		t.Fatalf("second pack added %v (err %v)", again.Added, err)
	}
}

func TestMissingLibraryNamesItAndWhoNeedsIt(t *testing.T) {
	root := t.TempDir()
	libDir := filepath.Join(t.TempDir(), "lib")
	program(t, root, libDir, "-Wl,-rpath,"+libDir)
	// Hide the library: the program still names it.
	if err := os.Rename(filepath.Join(libDir, "libgreet.so.1"), filepath.Join(libDir, "hidden")); err != nil {
		t.Fatal(err)
	}
	_, err := Pack(root, []string{"/app/prog"}, Options{ConfDirs: []string{}})
	var me *MissingError
	if !errors.As(err, &me) || me.Library != "libgreet.so.1" || me.NeededBy != "/app/prog" {
		t.Fatalf("want a MissingError for libgreet.so.1 needed by /app/prog, got %v", err)
	}
	for _, want := range []string{"libgreet.so.1", "needed by /app/prog", libDir, "install the package"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestLibraryFromLdSoConfGoesIntoLibraryPath(t *testing.T) {
	root := t.TempDir()
	libDir := filepath.Join(t.TempDir(), "conflib")
	program(t, root, libDir) // no RUNPATH: found through the configuration
	conf := filepath.Join(t.TempDir(), "ld.so.conf")
	os.MkdirAll(conf+".d", 0o755)
	os.WriteFile(conf, []byte("# comment\ninclude "+conf+".d/*.conf\n"), 0o644)
	os.WriteFile(filepath.Join(conf+".d", "x.conf"), []byte(libDir+"\n"), 0o644)
	dirs, err := ReadLdSoConf(conf)
	if err != nil || len(dirs) != 1 || dirs[0] != libDir {
		t.Fatalf("ReadLdSoConf = %v, %v", dirs, err)
	}
	res, err := Pack(root, []string{"/app/prog"}, Options{ConfDirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	if res.LibraryPathEnv() != "LD_LIBRARY_PATH="+libDir || !exists(t, root, libDir+"/libgreet.so.1") {
		t.Fatalf("result %+v", res)
	}
}

// An include that matches a folder or a dangling link reads nothing from
// it, as ldconfig does, instead of failing every dynamic build (found by
// FuzzLdSoConf: "include .").
func TestLdSoConfIncludeOfAFolderIsSkipped(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ld.so.conf")
	os.MkdirAll(filepath.Join(dir, "ld.so.conf.d", "sub.conf"), 0o755)
	os.Symlink("/nonexistent", filepath.Join(dir, "ld.so.conf.d", "gone.conf"))
	os.WriteFile(filepath.Join(dir, "ld.so.conf.d", "x.conf"), []byte("/opt/x/lib\n"), 0o644)
	os.WriteFile(conf, []byte("include .\ninclude ld.so.conf.d/*.conf\n/usr/local/lib\n"), 0o644)
	dirs, err := ReadLdSoConf(conf)
	if err != nil || strings.Join(dirs, " ") != "/opt/x/lib /usr/local/lib" {
		t.Fatalf("ReadLdSoConf = %v, %v; want [/opt/x/lib /usr/local/lib]", dirs, err)
	}
}

func TestBundledLibraryWithOriginAndStaticProgram(t *testing.T) {
	root := t.TempDir()
	// A library shipped in the app's own folder, found through $ORIGIN.
	libDir := filepath.Join(root, "app", "lib")
	program(t, root, libDir, "-Wl,-rpath,$ORIGIN/lib")
	res, err := Pack(root, []string{"/app/prog"}, Options{ConfDirs: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Added {
		if strings.Contains(a, "libgreet") {
			t.Errorf("the bundled library was copied from the host: %v", res.Added)
		}
	}
	static := t.TempDir()
	os.MkdirAll(filepath.Join(static, "app"), 0o755)
	build(t, filepath.Join(static, "app", "s"), "int main(void) { return 0; }\n", "-static")
	res, err = Pack(static, []string{"/app/s"}, Options{ConfDirs: []string{}})
	if err != nil || res.Dynamic || len(res.Added) != 0 {
		t.Fatalf("a static program needs nothing: %+v, %v", res, err)
	}
	// Files that are not ELF are skipped; ELF files of another machine are refused.
	os.WriteFile(filepath.Join(static, "app", "script.sh"), []byte("#!/bin/sh\n"), 0o755)
	if _, err := Pack(static, []string{"/app/script.sh"}, Options{ConfDirs: []string{}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(static, "app", "s"))
	b[18] = 0xb7 // e_machine = EM_AARCH64
	os.WriteFile(filepath.Join(static, "app", "arm"), b, 0o755)
	if _, err := Pack(static, []string{"/app/arm"}, Options{ConfDirs: []string{}}); err == nil || !strings.Contains(err.Error(), "only x86-64") {
		t.Fatalf("want a refusal of a foreign ELF file, got %v", err)
	}
}

func TestEtcFilesKeepTheBundles(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("app:x:1000:1000::/app:/bin/sh\n"), 0o644)
	if err := EtcFiles(root); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if string(b) != "app:x:1000:1000::/app:/bin/sh\n" {
		t.Errorf("the bundle's /etc/passwd was replaced: %q", b)
	}
	ns, _ := os.ReadFile(filepath.Join(root, "etc", "nsswitch.conf"))
	if !strings.Contains(string(ns), "hosts: files dns") {
		t.Errorf("nsswitch.conf = %q", ns)
	}
}

// A base whose kernel supplies the C library (OSv) gets neither the loader
// nor libc; a library from an ld.so.conf directory, which such a loader
// does not search, gets a link in LinkDir instead of LD_LIBRARY_PATH, and
// one found through RUNPATH needs none.
func TestProvidedAndLinkDir(t *testing.T) {
	root := t.TempDir()
	libDir := filepath.Join(t.TempDir(), "conflib")
	program(t, root, libDir)
	opts := Options{
		ConfDirs: []string{libDir},
		Provided: []string{"libc.so.6", "ld-linux-x86-64.so.2"},
		LinkDir:  "/usr/lib",
	}
	res, err := Pack(root, []string{"/app/prog"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Dynamic || len(res.LibraryPath) != 0 || res.LibraryPathEnv() != "" {
		t.Errorf("result %+v: want dynamic, no LD_LIBRARY_PATH", res)
	}
	for _, ip := range []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"} {
		if exists(t, root, ip) {
			t.Errorf("%s was packed, but the base supplies it", ip)
		}
	}
	link, err := os.Readlink(filepath.Join(root, "usr", "lib", "libgreet.so.1"))
	if err != nil || link != libDir+"/libgreet.so.1" || !exists(t, root, libDir+"/libgreet.so.1") {
		t.Errorf("/usr/lib/libgreet.so.1 -> %q (%v), want a link to %s/libgreet.so.1, which is packed", link, err, libDir)
	}

	// Through RUNPATH: no link.
	root2 := t.TempDir()
	libDir2 := filepath.Join(t.TempDir(), "rlib")
	program(t, root2, libDir2, "-Wl,-rpath,"+libDir2)
	if _, err := Pack(root2, []string{"/app/prog"}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root2, "usr", "lib", "libgreet.so.1")); err == nil {
		t.Error("a library found through RUNPATH got a link in /usr/lib")
	}
}

// Libraries can come from another system's root (a builder image) instead
// of the host: its loader configuration is read there, absolute links
// resolve inside it, and the files copied are its own.
func TestPackFromAnotherRoot(t *testing.T) {
	root := t.TempDir()
	sys := t.TempDir()
	libDir := filepath.Join(t.TempDir(), "lib")
	program(t, root, libDir) // no RUNPATH: found through sys's ld.so.conf
	// sys: the library in /opt/greet/lib, configured by an included file;
	// the host's loader and C library at Debian's paths, libc marked so
	// that the copy is known to come from sys; /lib64's loader an
	// absolute link, which must resolve in sys.
	put := func(rel string, b []byte) {
		p := filepath.Join(sys, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put("opt/greet/lib/libgreet.so.1", read(filepath.Join(libDir, "libgreet.so.1")))
	put("etc/ld.so.conf", []byte("include /etc/ld.so.conf.d/*.conf\n"))
	put("etc/ld.so.conf.d/greet.conf", []byte("/opt/greet/lib\n"))
	libc := append(read("/lib/x86_64-linux-gnu/libc.so.6"), []byte("from-sys")...)
	put("usr/lib/x86_64-linux-gnu/libc.so.6", libc)
	put("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", read("/lib64/ld-linux-x86-64.so.2"))
	os.Symlink("usr/lib", filepath.Join(sys, "lib"))
	os.MkdirAll(filepath.Join(sys, "lib64"), 0o755)
	os.Symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", filepath.Join(sys, "lib64", "ld-linux-x86-64.so.2"))
	os.Remove(filepath.Join(libDir, "libgreet.so.1")) // not on the host any more

	res, err := Pack(root, []string{"/app/prog"}, Options{From: Dir(sys)})
	if err != nil {
		t.Fatal(err)
	}
	if res.LibraryPathEnv() != "LD_LIBRARY_PATH=/opt/greet/lib" || !exists(t, root, "/opt/greet/lib/libgreet.so.1") {
		t.Fatalf("the library configured in the other root: %+v", res)
	}
	got, err := os.ReadFile(filepath.Join(root, "lib/x86_64-linux-gnu/libc.so.6"))
	if err != nil || !strings.HasSuffix(string(got), "from-sys") {
		t.Fatalf("libc.so.6 was not copied from the other root (err %v)", err)
	}
	if l, err := os.Readlink(filepath.Join(root, "lib64/ld-linux-x86-64.so.2")); err != nil || l != "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" {
		t.Errorf("the loader link: %q, %v", l, err)
	}
	// Nothing is read from a filesystem a static program does not need.
	static := t.TempDir()
	os.MkdirAll(filepath.Join(static, "app"), 0o755)
	build(t, filepath.Join(static, "app", "s"), "int main(void) { return 0; }\n", "-static")
	if res, err := Pack(static, []string{"/app/s"}, Options{From: failingFS{t}}); err != nil || res.Dynamic {
		t.Fatalf("a static program: %+v, %v", res, err)
	}
}

// failingFS fails the test on any use.
type failingFS struct{ t *testing.T }

func (f failingFS) Lstat(name string) (fs.FileInfo, error) {
	f.t.Errorf("Lstat %s", name)
	return nil, fs.ErrNotExist
}
func (f failingFS) ReadLink(name string) (string, error) {
	f.t.Errorf("ReadLink %s", name)
	return "", fs.ErrNotExist
}
func (f failingFS) Open(name string) (File, error) {
	f.t.Errorf("Open %s", name)
	return nil, fs.ErrNotExist
}
func (f failingFS) Glob(p string) ([]string, error) { f.t.Errorf("Glob %s", p); return nil, nil }

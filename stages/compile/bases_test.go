package compile

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

// elfInfo is what a base's loader cares about in a program.
func elfInfo(t *testing.T, file string) (typ elf.Type, interp bool, needed []string, init bool) {
	t.Helper()
	f, err := elf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = true
		}
	}
	needed, _ = f.DynString(elf.DT_NEEDED)
	return f.Type, interp, needed, f.Section(".init") != nil
}

func TestGoForOSvIsAnExternallyLinkedPIE(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: Go programs for OSv are linked with it (scripts/install-deps --test installs it)")
	}
	linuxApp := writeApp(t, okMain)
	osvApp := *linuxApp
	osvApp.Base = "osv"
	cacheDir := t.TempDir()
	rl, err := compileWith(t, linuxApp, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := compileWith(t, &osvApp, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Manifest.Key == ro.Manifest.Key {
		t.Fatal("the same source for linux and osv shares a bundle")
	}
	if typ, interp, _, _ := elfInfo(t, rootfsPath(rl, rl.Manifest.Program)); typ != elf.ET_EXEC || interp {
		t.Errorf("linux: %v with interpreter %v, want a static executable", typ, interp)
	}
	typ, _, needed, init := elfInfo(t, rootfsPath(ro, ro.Manifest.Program))
	if typ != elf.ET_DYN || !init || strings.Join(needed, ",") != "libc.so.6" {
		t.Errorf("osv: %v, .init %v, needs %v; want an externally linked PIE needing libc.so.6 only", typ, init, needed)
	}
	// OSv supplies the C library: neither it nor the loader is packed.
	for _, p := range []string{"lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"} {
		if _, err := os.Lstat(filepath.Join(ro.Dir, RootfsDir, p)); err == nil {
			t.Errorf("the osv bundle has /%s", p)
		}
	}
	// Reproducible: a fresh cache gives the same bytes.
	again, err := compileWith(t, &osvApp, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if treeDigest(t, filepath.Join(ro.Dir, RootfsDir)) != treeDigest(t, filepath.Join(again.Dir, RootfsDir)) {
		t.Error("two builds of the same source for osv differ")
	}
}

func TestCForOSvIsPIE(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	app := example(t, "c", "c", "")
	app.Base = "osv"
	r, err := compileWith(t, app, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	typ, interp, needed, _ := elfInfo(t, rootfsPath(r, r.Manifest.Program))
	if typ != elf.ET_DYN || !interp || strings.Join(needed, ",") != "libc.so.6" {
		t.Errorf("%v, interpreter %v, needs %v; want a PIE linked against libc", typ, interp, needed)
	}
}

func TestCheckBase(t *testing.T) {
	for _, l := range []string{"go", "c", "cpp", "rust", "elf", "python"} {
		if err := CheckBase("osv", l); err != nil {
			t.Errorf("%s on osv: %v", l, err)
		}
	}
	for _, l := range []string{"node", "java"} {
		err := CheckBase("osv", l)
		if err == nil || !strings.Contains(err.Error(), `language "`+l+`" cannot run on base "osv"`) || !strings.Contains(err.Error(), "choose one of c, cpp, elf, go, python, rust") {
			t.Errorf("%s on osv: %v", l, err)
		}
		if err := CheckBase("linux", l); err != nil {
			t.Errorf("%s on linux: %v", l, err)
		}
	}
	for _, l := range []string{"c", "cpp"} {
		if err := CheckBase("rump", l); err != nil {
			t.Errorf("%s on rump: %v", l, err)
		}
	}
	for _, l := range []string{"go", "rust", "python", "node", "java", "ocaml", "elf"} {
		err := CheckBase("rump", l)
		if err == nil || !strings.Contains(err.Error(), `language "`+l+`" cannot run on base "rump"`) || !strings.Contains(err.Error(), "choose one of c, cpp,") {
			t.Errorf("%s on rump: %v", l, err)
		}
	}
	if err := CheckBase("nosuchbase", "c"); err == nil || !strings.Contains(err.Error(), `base "nosuchbase" cannot be built by this version of unikfile (supported: includeos, linux, mirage, osv, rump)`) {
		t.Errorf("an unknown base: %v", err)
	}
	for _, l := range []string{"c", "cpp"} {
		if err := CheckBase("includeos", l); err != nil {
			t.Errorf("%s on includeos: %v", l, err)
		}
	}
	for _, l := range []string{"go", "rust", "python", "node", "java", "elf"} {
		err := CheckBase("includeos", l)
		if err == nil || !strings.Contains(err.Error(), "choose one of c, cpp, or base = \"linux\"") {
			t.Errorf("%s on includeos: %v", l, err)
		}
	}
	// Compile refuses before running anything.
	app := &lang.App{Name: "web", Source: t.TempDir(), Language: "node", Base: "osv"}
	if _, err := compileWith(t, app, t.TempDir()); err == nil || !strings.Contains(err.Error(), "app web: language \"node\" cannot run on base \"osv\"") {
		t.Errorf("compile of node for osv: %v", err)
	}
}

// An includeos app compiles with the SDK its block or
// UNIKFILE_INCLUDEOS_SDK names; without one the compile says how to get
// one, before running anything.
func TestIncludeOSNeedsAnSDK(t *testing.T) {
	t.Setenv("UNIKFILE_INCLUDEOS_SDK", "")
	app := &lang.App{Name: "svc", Source: t.TempDir(), Language: "cpp", Base: "includeos"}
	_, err := compileWith(t, app, t.TempDir())
	for _, w := range []string{"app svc: no IncludeOS SDK", "UNIKFILE_INCLUDEOS_SDK is unset", "README"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("compile without an SDK: %v; want %q", err, w)
		}
	}
	if got := LanguagesFor("includeos"); strings.Join(got, ",") != "c,cpp" {
		t.Errorf("LanguagesFor(includeos) = %v", got)
	}
}

// elf apps bring their own program: on OSv a static position-dependent
// one, and a Go program from Go's internal linker, are refused with what
// to do.
func TestOSvRefusesProgramsItCannotRun(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	src := t.TempDir()
	c := filepath.Join(t.TempDir(), "x.c")
	os.WriteFile(c, []byte("int main(void) { return 0; }\n"), 0o644)
	for name, args := range map[string][]string{"static": {"-static"}, "pie": {"-fPIE", "-pie"}} {
		if out, err := exec.Command("gcc", append(args, "-o", filepath.Join(src, name), c)...).CombinedOutput(); err != nil {
			t.Fatalf("gcc: %v\n%s", err, out)
		}
	}
	gosrc := writeApp(t, okMain).Source
	cmd := exec.Command("go", "build", "-buildmode=pie", "-o", filepath.Join(src, "gopie"), ".")
	cmd.Dir = gosrc
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for main, want := range map[string]string{
		"static": "/app/static is a static, position-dependent executable; OSv runs position-independent (PIE) or dynamically linked programs",
		"gopie":  "/app/gopie is a Go program built with -buildmode=pie by Go's internal linker",
		"pie":    "",
	} {
		app := &lang.App{Name: "x", Source: src, Language: "elf", Main: main, Base: "osv"}
		_, err := compileWith(t, app, t.TempDir())
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", main, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", main, err, want)
		}
	}
}

package compile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
)

// rumpSettings stands for the rump base's block (compile sees it through
// RumpToolchain only).
type rumpSettings struct{ dir string }

func (s rumpSettings) RumpToolchain() string { return s.dir }

// C and C++ for the rump base are compiled with Rumprun's toolchain, by
// make, CMake and from listed sources: the bundle's program is an object
// with Rumprun's bake recipe, its key differs from the linux base's, two
// builds give the same bytes, and $CC and $CXX (host compilers) do not
// apply.
func TestRumpCompilesWithRumprun(t *testing.T) {
	tc := testenv.RumprunToolchain(t)
	t.Setenv("CC", "/nonexistent/cc")
	t.Setenv("CXX", "/nonexistent/c++")
	listed := t.TempDir()
	os.WriteFile(filepath.Join(listed, "main.cpp"), []byte("#include <string>\n#include <iostream>\nint main() { std::string s = \"hi\"; std::cout << s << std::endl; }\n"), 0o644)
	os.WriteFile(filepath.Join(listed, "util.c"), []byte("int util(void) { return 1; }\n"), 0o644)
	for _, tc2 := range []struct {
		name string
		app  *lang.App
	}{
		{"C with make", example(t, "c", "rump/c", "")},
		{"C++ with CMake", example(t, "cpp", "rump/cpp", "")},
		{"C++ from listed sources", &lang.App{Name: "x", Source: listed, Language: "cpp"}},
	} {
		t.Run(tc2.name, func(t *testing.T) {
			app := *tc2.app
			app.Base = "rump"
			app.BaseSettings = rumpSettings{tc}
			cacheDir := t.TempDir()
			r, err := compileWith(t, &app, cacheDir)
			if err != nil {
				t.Fatal(err)
			}
			prog := rootfsPath(r, r.Manifest.Program)
			if err := rumprun.CheckProgram(prog, r.Manifest.Program); err != nil {
				t.Fatal(err)
			}
			if rec, _ := rumprun.Recipe(prog); rec["tooldir"] != tc {
				t.Errorf("compiled with %s, want the toolchain %s", rec["tooldir"], tc)
			}
			if !strings.Contains(r.Manifest.Toolchain, "rumprun "+tc) {
				t.Errorf("toolchain identity %q does not name the Rumprun toolchain", r.Manifest.Toolchain)
			}
			ents, _ := os.ReadDir(filepath.Join(r.Dir, RootfsDir))
			if len(ents) != 1 || ents[0].Name() != "app" {
				t.Errorf("the bundle holds more than the program: %v", ents)
			}
			again, err := compileWith(t, &app, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if treeDigest(t, filepath.Join(r.Dir, RootfsDir)) != treeDigest(t, filepath.Join(again.Dir, RootfsDir)) {
				t.Error("two builds of the same source for rump differ")
			}
			if app.Language == "c" {
				linux := *tc2.app
				t.Setenv("CC", "")
				rl, err := compileWith(t, &linux, cacheDir)
				if err != nil {
					t.Fatal(err)
				}
				if rl.Manifest.Key == r.Manifest.Key {
					t.Error("the same source for linux and rump shares a bundle")
				}
			}
		})
	}
}

// A compile error with Rumprun's compiler reaches the user with the
// compiler's output.
func TestRumpCompileErrors(t *testing.T) {
	tc := testenv.RumprunToolchain(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.c"), []byte("int main(void) { return undeclared; }\n"), 0o644)
	app := &lang.App{Name: "bad", Source: dir, Language: "c", Base: "rump", BaseSettings: rumpSettings{tc}}
	_, err := compileWith(t, app, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "C build of bad") || !strings.Contains(err.Error(), "undeclared") {
		t.Fatalf("err = %v", err)
	}
}

func TestRumpWithoutToolchain(t *testing.T) {
	t.Setenv(rumprun.Env, "")
	t.Setenv("PATH", "/usr/bin:/bin")
	app := example(t, "c", "rump/c", "")
	app.Base = "rump"
	_, err := compileWith(t, app, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no Rumprun toolchain found") || !strings.Contains(err.Error(), "build-rr.sh") {
		t.Fatalf("err = %v", err)
	}
	for _, l := range []string{"go", "python", "node", "java", "rust", "elf"} {
		if err := CheckBase("rump", l); err == nil || !strings.Contains(err.Error(), "on rump choose one of c, cpp") {
			t.Errorf("%s on rump: %v", l, err)
		}
	}
	if got := strings.Join(LanguagesFor("rump"), ","); got != "c,cpp" {
		t.Errorf("LanguagesFor(rump) = %s", got)
	}
}

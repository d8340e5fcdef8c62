package rumprun

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
)

func TestCheckProgram(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.c")
	os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o644)
	// A host program and a plain object are not programs for Rumprun.
	host, obj := filepath.Join(dir, "host"), filepath.Join(dir, "main.o")
	for _, args := range [][]string{{"-o", host, src}, {"-c", "-o", obj, src}} {
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	for _, f := range []string{host, obj} {
		if err := CheckProgram(f, "/app/main"); err == nil || !strings.Contains(err.Error(), "not a program linked by the Rumprun toolchain") {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := CheckProgram(src, "/app/main"); err == nil || !strings.Contains(err.Error(), "not an ELF file") {
		t.Errorf("a C source: %v", err)
	}

	// What the toolchain links is one, with its recipe.
	root := testenv.RumprunToolchain(t)
	tc, err := Resolve(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "prog")
	cmd := exec.Command(tc.CC(), "-O2", "-o", prog, src)
	cmd.Env = tc.Environ(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tc.CC(), err, out)
	}
	if err := CheckProgram(prog, "/app/main"); err != nil {
		t.Fatal(err)
	}
	r, err := Recipe(prog)
	if err != nil {
		t.Fatal(err)
	}
	if r["tuple"] != Tuple || r["tooldir"] != tc.Dir || !strings.HasPrefix(r["backingcc"], tc.Dir) {
		t.Errorf("recipe %v (toolchain %s)", r, tc.Dir)
	}
}

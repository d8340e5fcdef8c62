package rump_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
	"github.com/unikfile/unikfile/stages/package/rump"
	"github.com/unikfile/unikfile/stages/registry"
)

func load(t *testing.T, src string) (*lang.Project, string) {
	t.Helper()
	dir := t.TempDir()
	// A folder laid out as a toolchain: the block's check is of its layout.
	for _, f := range []string{"bin/rumprun-bake", "bin/" + rumprun.Tuple + "-gcc", "bin/" + rumprun.Tuple + "-g++", "rumprun-x86_64/lib/rumprun-hw/rumprun.o"} {
		p := filepath.Join(dir, "rumprun", f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o755)
	}
	p := filepath.Join(dir, "Unikfile")
	os.WriteFile(p, []byte(src), 0o644)
	proj, _, diags := lang.Load(p, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
	if !diags.HasErrors() {
		return proj, ""
	}
	return proj, diags.Error()
}

// The rump block as the Unikfile sees it: a toolchain path made absolute
// and checked at its line; the languages Rumprun runs, refused at the base
// line otherwise; args and env that Rumprun's configuration cannot carry
// refused before anything builds.
func TestBaseSettings(t *testing.T) {
	proj, errs := load(t, `app "a" {
  language = "cpp"
  base     = "rump"
  args     = ["8080", "two words", ""]
  env      = { GREETING = "hello, world" }
  rump {
    toolchain = "rumprun"
  }
}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	if s := rump.SettingsOf(proj.App("a")); !filepath.IsAbs(s.Toolchain) || !strings.HasSuffix(s.Toolchain, "/rumprun") {
		t.Errorf("settings %+v", s)
	}
	for _, tc := range []struct{ src, want string }{
		{`app "a" {
  language = "go"
  base     = "rump"
}`, `Unikfile:3,14-20: Base rump does not run language go; Apps on base "rump" are written in c, cpp`},
		{`app "a" {
  language = "python"
  base     = "rump"
}`, `Base rump does not run language python`},
		{`app "a" {
  language = "c"
  base     = "rump"
  rump {
    toolchain = "elsewhere"
  }
}`, `Unikfile:5,17-28: Rumprun toolchain not usable; toolchain = "`},
		{`app "a" {
  language = "c"
  base     = "rump"
  args     = ["it's"]
}`, `Argument Rumprun cannot pass; args[0] = "it's" of app "a": Rumprun's command line cannot carry a single quote`},
		{`app "a" {
  language = "c"
  base     = "rump"
  env      = { WINPATH = "C:\\dir" }
}`, `Environment Rumprun cannot pass; app "a": environment variable WINPATH: `},
		{`app "a" {
  language = "c"
  rump {}
}`, `A rump block in an app of base linux`},
	} {
		_, errs := load(t, tc.src)
		if !strings.Contains(errs, tc.want) {
			t.Errorf("errors %q, want %q", errs, tc.want)
		}
	}
}

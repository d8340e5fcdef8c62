package includeos_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	sdk "github.com/unikfile/unikfile/stages/compile/includeos"
	"github.com/unikfile/unikfile/stages/registry"
)

// load reads src as dir/Unikfile, where dir holds a stand-in SDK folder
// "sdk" with the files that make one.
func load(t *testing.T, src string) (*lang.Project, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{sdk.ToolchainFile, sdk.ModuleFile, sdk.KernelLib} {
		p := filepath.Join(dir, "sdk", f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("set(CMAKE_CXX_COMPILER clang++-19)\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "notsdk"), 0o755)
	p := filepath.Join(dir, "Unikfile")
	os.WriteFile(p, []byte(src), 0o644)
	proj, _, diags := lang.Load(p, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
	if !diags.HasErrors() {
		return proj, ""
	}
	return proj, diags.Error()
}

// The includeos block as the Unikfile sees it: an SDK path made absolute
// and checked, the languages IncludeOS runs at the base line, and what of
// an app IncludeOS cannot take.
func TestBaseSettings(t *testing.T) {
	proj, errs := load(t, `app "a" {
  language = "cpp"
  base     = "includeos"
  args     = ["--port", "80"]
  includeos {
    sdk = "sdk"
  }
}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	s := sdk.SettingsOf(proj.App("a"))
	if !filepath.IsAbs(s.SDK) || !strings.HasSuffix(s.SDK, "/sdk") {
		t.Errorf("settings %+v", s)
	}
	for _, tc := range []struct{ src, want string }{
		{`app "a" {
  language = "go"
  base     = "includeos"
}`, `Unikfile:3,14-25: Base includeos does not run language go; Apps on base "includeos" are written in c, cpp`},
		{`app "a" {
  language = "cpp"
  base     = "includeos"
  includeos {
    sdk = "notsdk"
  }
}`, `Unikfile:5,11-19: Not an IncludeOS SDK; sdk = "`},
		{`app "a" {
  language = "cpp"
  base     = "includeos"
  includeos {
    sdk = "missing"
  }
}`, `no IncludeOS SDK there`},
		{`app "a" {
  language = "c"
  base     = "includeos"
  env      = { B = "1", A = "2" }
}`, `Unikfile:1,1-8: IncludeOS services have no environment; App a sets env (A, B)`},
		{`app "a" {
  language = "c"
  base     = "includeos"
  args     = ["two words"]
}`, `Unikfile:1,1-8: Arguments IncludeOS cannot take; App a: argument "two words" holds white space`},
		{`app "a" {
  language = "c"
  base     = "includeos"
  includeos {
    kernel = "x"
  }
}`, `Unsupported argument; An argument named "kernel" is not expected here`},
	} {
		_, errs := load(t, tc.src)
		if !strings.Contains(errs, tc.want) {
			t.Errorf("%s\ngot:  %s\nwant: %s", tc.src, errs, tc.want)
		}
	}
}

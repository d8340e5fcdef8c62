package osv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/package/osv"
	"github.com/unikfile/unikfile/stages/registry"
)

func load(t *testing.T, src string) (*lang.Project, string) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "kernels", "osv"), 0o755)
	p := filepath.Join(dir, "Unikfile")
	os.WriteFile(p, []byte(src), 0o644)
	proj, _, diags := lang.Load(p, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
	if !diags.HasErrors() {
		return proj, ""
	}
	return proj, diags.Error()
}

// The osv block as the Unikfile sees it: a kernel path made absolute,
// options checked at their line, and the languages OSv runs.
func TestBaseSettings(t *testing.T) {
	proj, errs := load(t, `app "a" {
  language = "c"
  base     = "osv"
  osv {
    kernel  = "kernels/osv"
    options = ["--disable_rofs_cache"]
  }
}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	s := osv.SettingsOf(proj.App("a"))
	if !filepath.IsAbs(s.Kernel) || !strings.HasSuffix(s.Kernel, "kernels/osv") || len(s.Options) != 1 {
		t.Errorf("settings %+v", s)
	}
	for _, tc := range []struct{ src, want string }{
		{`app "a" {
  language = "c"
  base     = "osv"
  osv {
    options = ["--ok", "not-an-option"]
  }
}`, `Unikfile:5,15-40: Invalid OSv option; "not-an-option" is not an OSv kernel option`},
		{`app "a" {
  language = "c"
  base     = "osv"
  osv {
    kernel = "missing"
  }
}`, `OSv kernel not found; kernel = "`},
		{`app "a" {
  language = "java"
  base     = "osv"
}`, `Base osv does not run language java; Apps on base "osv" are written in c, cpp, elf, go, python, rust`},
		{`app "a" {
  language = "c"
  osv {}
}`, `A osv block in an app of base linux`},
	} {
		_, errs := load(t, tc.src)
		if !strings.Contains(errs, tc.want) {
			t.Errorf("errors %q, want %q", errs, tc.want)
		}
	}
}

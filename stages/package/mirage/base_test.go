package mirage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/package/mirage"
	"github.com/unikfile/unikfile/stages/registry"
)

func load(t *testing.T, src string) (*lang.Project, string) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.MkdirAll(filepath.Join(dir, "tc"), 0o755)
	p := filepath.Join(dir, "Unikfile")
	os.WriteFile(p, []byte(src), 0o644)
	proj, _, diags := lang.Load(p, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
	if !diags.HasErrors() {
		return proj, ""
	}
	return proj, diags.Error()
}

// The mirage block and the app as a unikernel takes it: a toolchain made
// absolute, only OCaml on mirage and OCaml nowhere else, no environment,
// boot parameters a Solo5 command line carries; every error at its line.
func TestBaseSettingsAndValidation(t *testing.T) {
	proj, errs := load(t, `app "web" {
  source   = "./web"
  language = "ocaml"
  base     = "mirage"
  args     = ["--http-port=8080", "-l", "*:debug"]
  ports    = [8080]
  mirage {
    toolchain = "tc"
  }
}
target "dev" {
  provider = "qemu"
  apps     = [app.web]
}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	s := mirage.SettingsOf(proj.App("web"))
	if !filepath.IsAbs(s.Toolchain) || !strings.HasSuffix(s.Toolchain, "/tc") || s.MirageToolchain() != s.Toolchain {
		t.Errorf("settings %+v", s)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"go on mirage", `app "a" {
  language = "go"
  base     = "mirage"
}`, `Unikfile:3,14-22: Base mirage does not run language go; Apps on base "mirage" are written in ocaml; this app's language is "go". Choose another base for it (e.g. base = "linux")`},
		{"ocaml on linux", `app "a" {
  language = "ocaml"
  base     = "linux"
}`, `Unikfile:3,14-21: Base linux does not run language ocaml; Apps on base "linux" are written in c, cpp, elf, go, java, node, python, rust; this app's language is "ocaml". Choose another base for it (e.g. base = "mirage")`},
		{"ocaml on the default base", `app "a" {
  language = "ocaml"
}`, `Base linux does not run language ocaml`},
		{"ocaml on osv", `app "a" {
  language = "ocaml"
  base     = "osv"
}`, `(e.g. base = "mirage")`},
		{"a toolchain that is not there", `app "a" {
  language = "ocaml"
  base     = "mirage"
  mirage {
    toolchain = "nowhere"
  }
}`, `Unikfile:5,17-26: MirageOS toolchain not found; toolchain = "`},
		{"env on a unikernel", `app "a" {
  language = "ocaml"
  base     = "mirage"
  env      = { PORT = 8080, DEBUG = 1 }
}`, `Unikfile:1,1-8: Environment on a MirageOS unikernel; App "a" sets env (DEBUG, PORT), but a MirageOS unikernel has no environment`},
		{"an empty boot parameter", `app "a" {
  language = "ocaml"
  base     = "mirage"
  args     = ["--port=7", ""]
}`, `Invalid boot parameter; App "a": an empty argument cannot reach a MirageOS unikernel`},
		{"an unknown setting", `app "a" {
  language = "ocaml"
  base     = "mirage"
  mirage {
    kernel = "x"
  }
}`, `Unsupported argument; An argument named "kernel" is not expected here`},
	} {
		_, errs := load(t, tc.src)
		if !strings.Contains(errs, tc.want) {
			t.Errorf("%s: errors\n%s\nwant %q", tc.name, errs, tc.want)
		}
	}
}

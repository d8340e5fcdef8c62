package linux_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/registry"
)

// kernel = "minimal" is a keyword, not a file that must exist; a file of
// that name is written "./minimal".
func TestLinuxBlockKernelMinimal(t *testing.T) {
	dir := t.TempDir()
	uf := filepath.Join(dir, lang.FileName)
	src := `
app "a" {
  language = "go"
  linux {
    kernel = "minimal"
  }
}
app "b" {
  language = "go"
  linux {
    kernel = "./minimal"
  }
}
`
	if err := os.WriteFile(uf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "minimal"), []byte("a vmlinuz"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := lang.Load(uf, lang.Options{Catalog: registry.Catalog(), Environ: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := linux.SettingsOf(p.App("a")).Kernel; got != linux.KernelMinimal {
		t.Errorf(`kernel = "minimal" became %q`, got)
	}
	if got, want := linux.SettingsOf(p.App("b")).Kernel, filepath.Join(dir, "minimal"); got != want {
		t.Errorf(`kernel = "./minimal" became %q, want %q`, got, want)
	}
}

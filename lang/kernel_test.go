package lang

import (
	"path/filepath"
	"testing"
)

// kernel = "minimal" is a keyword; a file of that name is "./minimal".
func TestLinuxKernelMinimal(t *testing.T) {
	path := project(t, `
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
`)
	p, _, diags := Load(path, Options{Environ: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := p.App("a").Linux.Kernel; got != KernelMinimal {
		t.Errorf(`kernel = "minimal" became %q`, got)
	}
	if got, want := p.App("b").Linux.Kernel, filepath.Join(filepath.Dir(path), "minimal"); got != want {
		t.Errorf(`kernel = "./minimal" became %q, want %q`, got, want)
	}
}

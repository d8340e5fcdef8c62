package lang_test

import (
	"testing"

	. "github.com/unikfile/unikfile/lang"
)

func TestBuilderAndExecutorDefaults(t *testing.T) {
	path := project(t, `
app "a" {
  language = "go"
  builder  = "registry.example.com/go-builder:1"
}
app "b" {
  language = "go"
}
`)
	p, _, diags := Load(path, Options{Catalog: catalog, Environ: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := p.App("a").Builder; got != "registry.example.com/go-builder:1" {
		t.Errorf("a.Builder = %q", got)
	}
	if got := p.App("b").Builder; got != "" {
		t.Errorf("b.Builder = %q; want \"\" (the language's default)", got)
	}
	if p.Build.Executor != "local" || p.Build.ExecutorSet || p.Build.BuildKitHost != "" || p.Build.CacheFrom != nil {
		t.Errorf("Build without a build block = %+v; want local, not set, no host, no caches", p.Build)
	}
}

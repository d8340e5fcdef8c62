package buildkit

import (
	"testing"

	"github.com/unikfile/unikfile/lang"
)

// Under executor auto the pipeline compiles locally what Supports refuses:
// the recipes' languages on the linux base only.
func TestSupportsLanguageAndBase(t *testing.T) {
	e := &Executor{}
	for _, c := range []struct {
		lang, base string
		want       bool
	}{
		{"go", "linux", true},
		{"c", "linux", true},
		{"elf", "linux", false},
		{"go", "osv", false},
		{"c", "osv", false},
		{"c", "rump", false},
		{"cpp", "rump", false},
		{"go", "no-such-base", false},
		{"ocaml", "mirage", false},
		{"ocaml", "linux", false},
		{"go", "mirage", false},
	} {
		if got := e.Supports(&lang.App{Name: "a", Language: c.lang, Base: c.base}); got != c.want {
			t.Errorf("Supports(%s on %s) = %v, want %v", c.lang, c.base, got, c.want)
		}
	}
}

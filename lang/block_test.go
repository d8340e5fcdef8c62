package lang_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	. "github.com/unikfile/unikfile/lang"
)

// probeSchema is a provider whose block has a bool and a memory size, to
// test Block's getters as a provider's Decode uses them.
type probeSchema struct{}

type probeSettings struct {
	Insecure  bool
	MemoryMiB int
}

func (*probeSettings) Forwards([]int) ([]Forward, bool) { return nil, false }
func (s *probeSettings) Redeploy() any                  { return *s }

func (probeSchema) Formats() []string         { return []string{FormatKernelInitrd} }
func (probeSchema) Default() (string, string) { return FormatKernelInitrd, "bios" }
func (probeSchema) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "insecure"}, {Name: "memory"}}}
}
func (probeSchema) Decode(b *Block, _ TargetInfo) TargetSettings {
	s := &probeSettings{}
	s.Insecure, _ = b.Bool("insecure", false)
	s.MemoryMiB, _ = b.Memory("memory", 128)
	return s
}

func loadProbe(t *testing.T, block string) (*probeSettings, string) {
	t.Helper()
	c := *catalog
	c.Providers = map[string]ProviderSchema{"probe": probeSchema{}}
	for k, v := range catalog.Providers {
		c.Providers[k] = v
	}
	dir := t.TempDir()
	src := `variable "insecure" {
  default = true
}
app "a" {
  language = "go"
}
target "t" {
  provider = "probe"
  apps     = [app.a]
  probe {
` + block + `
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "Unikfile"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := Load(filepath.Join(dir, "Unikfile"), Options{Catalog: &c})
	if diags.HasErrors() {
		return nil, diags.Error()
	}
	return p.Targets[0].Settings.(*probeSettings), ""
}

func TestBlockBoolAndMemory(t *testing.T) {
	s, errs := loadProbe(t, `insecure = var.insecure
memory = "1GiB"`)
	if errs != "" {
		t.Fatal(errs)
	}
	if !s.Insecure || s.MemoryMiB != 1024 {
		t.Errorf("settings = %+v, want insecure from the variable and 1024 MiB", s)
	}
	if s, _ = loadProbe(t, ``); s.Insecure || s.MemoryMiB != 128 {
		t.Errorf("defaults = %+v", s)
	}
	for block, want := range map[string]string{
		`insecure = "maybe"`:    "bool",
		`memory = "12 parsecs"`: "Invalid memory size",
		`memory = "300"`:        "no unit",
	} {
		if _, errs := loadProbe(t, block); !strings.Contains(errs, want) {
			t.Errorf("%s: errors %q, want %q", block, errs, want)
		}
	}
}

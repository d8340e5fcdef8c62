package registry

import (
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/compile/buildkit"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// Catalog is what the stages implement, for lang.Options.Catalog.
func Catalog() *lang.Catalog {
	c := &lang.Catalog{
		Languages:   compile.Languages(),
		Bases:       map[string]lang.BaseSchema{},
		DefaultBase: DefaultBase,
		Providers:   map[string]lang.ProviderSchema{},
		Formats:     append([]string{pack.FormatKernelInitrd}, formatNames()...),
		Boots:       []string{pack.BootBIOS, pack.BootUEFI},
		Executors:   []string{compile.LocalName, buildkit.Name, buildkit.Auto},
	}
	for name, b := range bases {
		c.Bases[name] = b
	}
	for name, p := range providers {
		c.Providers[name] = p.schema
	}
	return c
}

// formatNames are the disk formats in the table's order.
func formatNames() []string {
	var out []string
	for _, f := range format.Formats {
		out = append(out, f.Name)
	}
	return out
}

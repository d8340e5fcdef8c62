package registry

import (
	"slices"

	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/includeos"
	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/package/mirage"
	"github.com/unikfile/unikfile/stages/package/osv"
	"github.com/unikfile/unikfile/stages/package/rump"
)

// DefaultBase is an app's base when it names none.
const DefaultBase = linux.Name

// bases is the table of bases, by the name an app's `base` attribute uses.
var bases = map[string]pack.Base{
	linux.Name:     linux.Base{},
	osv.Name:       osv.Base{},
	rump.Name:      rump.Base{},
	mirage.Name:    mirage.Base{},
	includeos.Name: includeos.Base{},
}

// Base returns the base called name, or nil.
func Base(name string) pack.Base { return bases[name] }

// BaseNames are the names of the bases, sorted.
func BaseNames() []string {
	out := make([]string, 0, len(bases))
	for n := range bases {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

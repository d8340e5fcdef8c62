package lang_test

import (
	. "github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/registry"
)

// catalog is what the stages of this build implement, as the CLI passes it.
var catalog = registry.Catalog()

// Load is what every test in this package reads a Unikfile with.
var _ = Load

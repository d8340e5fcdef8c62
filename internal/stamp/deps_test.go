package stamp

import (
	"os/exec"
	"strings"
	"testing"
)

// early are the standard packages Go initialises before most of the
// binary; anything else imported here would hold Early back until the
// packages sorted before it (protobuf registries, SDKs) had initialised.
var early = map[string]bool{
	"bytes": true, "cmp": true, "errors": true, "hash": true, "hash/fnv": true, "io": true, "io/fs": true,
	"iter": true, "math/bits": true, "os": true, "path": true, "slices": true, "sort": true, "strconv": true,
	"strings": true, "sync": true, "sync/atomic": true, "syscall": true, "time": true, "unicode": true,
	"unicode/utf8": true, "unsafe": true, "runtime": true,
}

func TestImportsOnlyEarlyPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/unikfile/unikfile/internal/stamp" || early[p] || strings.HasPrefix(p, "internal/") ||
			strings.HasPrefix(p, "runtime/internal") || strings.Contains(p, "/internal/") || p == "vendor" {
			continue
		}
		t.Errorf("internal/stamp depends on %s, which Go may initialise after the SDKs: keep the package to the early ones", p)
	}
}

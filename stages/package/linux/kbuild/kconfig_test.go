package kbuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// machineSource is the kernel source unpacked in this machine's kbuild
// folder (scripts/install-deps --test builds the tests' kernels, which
// unpacks it); the test skips when there is none.
func machineSource(t *testing.T) *Source {
	t.Helper()
	cacheDir := os.Getenv("UNIKFILE_CACHE_DIR")
	if cacheDir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			t.Skip(err)
		}
		cacheDir = filepath.Join(c, "unikfile")
	}
	src, err := LatestSource(Dir(cacheDir, os.Environ()))
	if err != nil {
		t.Fatal(err)
	}
	if src == nil {
		t.Skip("no kernel source in this machine's kbuild folder: scripts/install-deps --test unpacks it (unikfile kernel build)")
	}
	return src
}

// Every platform's configuration survives Kconfig on the real source:
// each option asked for is in the .config, as asked.
func TestFragmentsSurviveKconfig(t *testing.T) {
	src := machineSource(t)
	if err := CheckTools(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		language string
		p        Platform
	}{
		{"go", Platform{}},
		{"python", Platform{}},
		{"go", Platform{Format: "qcow2", Boot: "bios"}},
		{"java", Platform{Format: "raw", Boot: "uefi"}},
		{"go", Platform{Format: "gce", Boot: "uefi"}},
		{"go", Platform{Provider: "aws", Format: "raw"}},
		{"node", Platform{Provider: "vsphere", Format: "vmdk"}},
	} {
		n, err := NeedsFor(c.language, c.p)
		if err != nil {
			t.Fatal(err)
		}
		frag, _ := Fragment(n)
		tree := t.TempDir()
		fp := filepath.Join(tree, "unikfile.fragment")
		if err := os.WriteFile(fp, []byte(frag), 0o644); err != nil {
			t.Fatal(err)
		}
		b := &Builder{Root: t.TempDir()}
		if err := b.configure(context.Background(), src, tree, fp); err != nil {
			t.Fatalf("%s on %+v: %v", c.language, c.p, err)
		}
		config, err := os.ReadFile(filepath.Join(tree, ".config"))
		if err != nil {
			t.Fatal(err)
		}
		if missing := Missing(frag, string(config)); len(missing) > 0 {
			t.Errorf("%s on %+v: Kconfig dropped %s", c.language, c.p, strings.Join(missing, ", "))
		}
		if strings.Contains(string(config), "CONFIG_MODULES=y") {
			t.Errorf("%s on %+v: modules are on", c.language, c.p)
		}
	}
}

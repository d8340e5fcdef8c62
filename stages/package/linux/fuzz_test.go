package linux

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzModinfo: the .modinfo reader never panics and never reads more than
// maxModinfo, whatever the module file holds.
func FuzzModinfo(f *testing.F) {
	dir := f.TempDir()
	for i, info := range [][]string{
		{"depends=virtio,virtio_ring", "license=GPL"},
		{"depends=", "vermagic=6.1.0"},
		{"alias=pci:v00001AF4d00001000sv*sd*bc*sc*i*", "depends=virtio-ring, failover"},
	} {
		p := filepath.Join(dir, "m"+string(rune('0'+i))+".ko")
		writeFakeModule(f, p, info...)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A real module of the cached kernel, when there is one.
	if mods, _ := filepath.Glob(filepath.Join(os.Getenv("HOME"), ".cache/unikfile/kernels/*/lib/modules/*/kernel/drivers/net/virtio_net.ko")); len(mods) > 0 {
		if b, err := os.ReadFile(mods[0]); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		deps, err := modinfoDepends(bytes.NewReader(b))
		if err == nil {
			for _, d := range deps {
				if d == "" {
					t.Fatal("an empty dependency")
				}
			}
		}
	})
}

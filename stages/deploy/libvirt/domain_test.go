package libvirt

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func testMeta() Metadata {
	return Metadata{ID: "api-0123456789", Project: "/srv/app", Target: "lab", App: "api", Image: "abc",
		Settings: "def", Pool: "default", Client: "ws1:/root/.local/state/unikfile",
		Volumes: []string{"unikfile-image-1.kernel", "unikfile-image-2.initrd"}}
}

// The domain XML of each way to boot, as golden files (go test -update
// rewrites them).
func TestDomainXMLGolden(t *testing.T) {
	base := Machine{Type: "qemu", MemoryMiB: 256, CPUs: 1, ConsoleLog: "/pool/unikfile-api-0123456789.console.log"}
	for name, m := range map[string]Machine{
		"kernel-user": func() Machine {
			m := base
			m.Kernel, m.Initrd, m.Cmdline, m.Network = "/pool/k", "/pool/i", "console=ttyS0", NetworkUser
			return m
		}(),
		"qcow2-bios-network": func() Machine {
			m := base
			m.Disk, m.Network = "/pool/unikfile-api-0123456789.qcow2", "default"
			return m
		}(),
		"qcow2-uefi-bridge": func() Machine {
			m := base
			m.Type, m.CPUs, m.Disk, m.UEFI, m.Bridge = "kvm", 2, "/pool/o.qcow2", true, "br0"
			return m
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := domainXML("unikfile-api-0123456789", m, testMeta())
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".xml")
			if *update {
				if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if got+"\n" != string(want) {
				t.Errorf("domain XML differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			meta, ok := parseMetadata(got)
			if !ok || !reflect.DeepEqual(meta.Volumes, testMeta().Volumes) || meta.ID != testMeta().ID || meta.Client != testMeta().Client {
				t.Errorf("metadata read back: %+v, %v", meta, ok)
			}
		})
	}
	if _, err := domainXML("x", base, testMeta()); err == nil {
		t.Error("a domain with neither kernel nor disk")
	}
}

func TestMetadataOfOtherDomains(t *testing.T) {
	for _, x := range []string{
		`<domain type='kvm'><name>web</name></domain>`,
		`<domain type='kvm'><name>web</name><metadata><app xmlns="https://example.com/">x</app></metadata></domain>`,
		`not xml`,
	} {
		if m, ok := parseMetadata(x); ok {
			t.Errorf("%s: metadata %+v", x, m)
		}
	}
}

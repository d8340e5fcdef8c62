package libvirt

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
)

// catalog is enough of the registry's for a libvirt target.
func catalog() *lang.Catalog {
	return &lang.Catalog{
		Languages:   []string{"go"},
		Bases:       map[string]lang.BaseSchema{"linux": noBlock{}},
		DefaultBase: "linux",
		Providers:   map[string]lang.ProviderSchema{Name: Schema{}},
		Formats:     []string{"kernel+initrd", "raw", "qcow2", "vmdk"},
		Boots:       []string{"bios", "uefi"},
		Executors:   []string{"local"},
	}
}

type noBlock struct{}

func (noBlock) Languages() []string                   { return nil }
func (noBlock) Schema() *hcl.BodySchema               { return nil }
func (noBlock) Decode(b *lang.Block, a *lang.App) any { return nil }

func load(t *testing.T, block string) (*Settings, string) {
	t.Helper()
	dir := t.TempDir()
	src := `app "api" {
  language = "go"
  ports    = [8080]
}
target "lab" {
  provider = "libvirt"
  apps     = [app.api]
  ` + block + `
}
`
	if err := os.WriteFile(filepath.Join(dir, "Unikfile"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := lang.Load(filepath.Join(dir, "Unikfile"), lang.Options{Catalog: catalog(), Environ: []string{}})
	if diags.HasErrors() {
		return nil, diags.Error()
	}
	return p.Targets[0].Settings.(*Settings), ""
}

func TestDecodeDefaults(t *testing.T) {
	s, errs := load(t, "")
	if errs != "" {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(s, DefaultSettings()) {
		t.Errorf("settings %+v, want the defaults %+v", s, DefaultSettings())
	}
	fw, ok := s.Forwards([]int{8080})
	if !ok || !reflect.DeepEqual(fw, []lang.Forward{{Bind: "127.0.0.1", Host: 8080, Guest: 8080}}) {
		t.Errorf("default forwards %v %v", fw, ok)
	}
}

func TestDecodeSettings(t *testing.T) {
	s, errs := load(t, `libvirt {
    uri        = "qemu+ssh://ops@kvm1.example.com/system?keyfile=/home/ops/.ssh/id_ed25519"
    pool       = "images"
    network    = "user"
    bind       = "0.0.0.0"
    host_ports = { 8080 = 18080 }
    accel      = "tcg"
    cpus       = 2
  }`)
	if errs != "" {
		t.Fatal(errs)
	}
	want := &Settings{URI: "qemu+ssh://ops@kvm1.example.com/system?keyfile=/home/ops/.ssh/id_ed25519", Pool: "images",
		Network: "user", Bind: "0.0.0.0", HostPorts: map[int]int{8080: 18080}, Accel: AccelTCG, CPUs: 2}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings %+v, want %+v", s, want)
	}

	s, errs = load(t, `libvirt {
    network = "default"
  }`)
	if errs != "" {
		t.Fatal(errs)
	}
	if fw, ok := s.Forwards([]int{8080}); ok || fw != nil {
		t.Errorf("a libvirt network forwards %v", fw)
	}
	s, _ = load(t, `libvirt {
    bridge = "br0"
  }`)
	if s.Bridge != "br0" || s.Network != "" || s.User() {
		t.Errorf("bridge settings %+v", s)
	}
}

func TestDecodeErrors(t *testing.T) {
	for block, want := range map[string]string{
		`libvirt { uri = "xen:///system" }`:                                    "unikfile boots QEMU domains",
		`libvirt { uri = "qemu+ssh://ops:secret@host/system" }`:                "holds a password",
		`libvirt { uri = "qemu:///nowhere" }`:                                  "must be /system or /session",
		`libvirt { uri = "qemu+telnet://host/system" }`:                        "transport",
		"libvirt {\n network = \"default\"\n bridge = \"br0\"\n }":             "Network and bridge both set",
		"libvirt {\n network = \"default\"\n host_ports = { 8080 = 9000 }\n }": "Port forwards without user-mode networking",
		`libvirt { bind = "::1" }`:                                             "Invalid bind address",
		`libvirt { host_ports = { 9090 = 9000 } }`:                             "no app of target \"lab\" listens on port 9090",
		`libvirt { accel = "hvf" }`:                                            "accel",
		`libvirt { pool = "a/b" }`:                                             "Invalid storage pool name",
		`libvirt { disk = "x" }`:                                               "Unsupported argument",
		`format = "vmdk"`:                                                      "cannot boot format \"vmdk\"",
	} {
		_, errs := load(t, block)
		if !strings.Contains(errs, want) {
			t.Errorf("%s: errors %q, want %q", block, errs, want)
		}
	}
}

// Settings that shape every instance replace it; another app's host port
// does not.
func TestSettingsDigest(t *testing.T) {
	api := &lang.App{Name: "api", Ports: []int{8080}, MemoryMiB: 256}
	digest := func(s *Settings) string {
		tg := &lang.Target{Name: "lab", Provider: Name, Settings: s}
		fw, _ := deploy.Forwards(tg, api, nil)
		return deploy.SettingsDigest(tg, api, fw)
	}
	d0 := digest(DefaultSettings())
	for name, change := range map[string]func(s *Settings){
		"uri":          func(s *Settings) { s.URI = "qemu+tcp://h/system" },
		"pool":         func(s *Settings) { s.Pool = "other" },
		"network":      func(s *Settings) { s.Network = "default" },
		"accel":        func(s *Settings) { s.Accel = AccelTCG },
		"cpus":         func(s *Settings) { s.CPUs = 4 },
		"its own port": func(s *Settings) { s.HostPorts = map[int]int{8080: 9000} },
	} {
		s := DefaultSettings()
		change(s)
		if digest(s) == d0 {
			t.Errorf("changing %s does not replace the instance", name)
		}
	}
	s := DefaultSettings()
	s.HostPorts = map[int]int{9090: 9000}
	if digest(s) != d0 {
		t.Error("another app's host port replaces this one")
	}
}

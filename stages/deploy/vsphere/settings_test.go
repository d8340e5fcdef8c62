package vsphere_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/vsphere"
	"github.com/unikfile/unikfile/stages/registry"
)

// load reads a Unikfile with one app and a vsphere target whose body is
// body, through the catalog the CLI uses.
func load(t *testing.T, body string) (*lang.Target, string) {
	t.Helper()
	dir := t.TempDir()
	src := `app "api" {
  language = "go"
  ports    = [8080]
}
target "vmware" {
  provider = "vsphere"
  apps     = [app.api]
` + body + `
}
`
	if err := os.WriteFile(filepath.Join(dir, "Unikfile"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := lang.Load(filepath.Join(dir, "Unikfile"), lang.Options{Catalog: registry.Catalog()})
	if diags.HasErrors() {
		var b strings.Builder
		for _, d := range diags {
			b.WriteString(d.Summary + ": " + d.Detail + "\n")
		}
		return nil, b.String()
	}
	return p.Targets[0], ""
}

func TestDecodeEverySetting(t *testing.T) {
	tg, errs := load(t, `  vsphere {
    url           = "https://vcenter.example.com/sdk"
    datacenter    = "DC1"
    datastore     = "fast-ssd"
    network       = "VM Network"
    resource_pool = "/DC1/host/Cluster/Resources/apps"
    host          = "esx1.example.com"
    folder        = "/DC1/vm/unikernels"
    insecure      = true
    cpus          = 2
    memory        = "1GiB"
  }`)
	if errs != "" {
		t.Fatal(errs)
	}
	s := tg.Settings.(*vsphere.Settings)
	want := vsphere.Settings{URL: "https://vcenter.example.com/sdk", Datacenter: "DC1", Datastore: "fast-ssd", Network: "VM Network",
		ResourcePool: "/DC1/host/Cluster/Resources/apps", Host: "esx1.example.com", Folder: "/DC1/vm/unikernels", Insecure: true, CPUs: 2, MemoryMiB: 1024}
	if *s != want {
		t.Errorf("settings %+v\nwant %+v", *s, want)
	}
	if tg.Format != "vmdk" || tg.Boot != "bios" {
		t.Errorf("format %s, boot %s; want the default vmdk, bios", tg.Format, tg.Boot)
	}
	if fw, ok := tg.Forwards(&lang.App{Ports: []int{8080}}); ok || fw != nil {
		t.Errorf("Forwards = %v, %v: apps are reached at their own address", fw, ok)
	}
}

func TestDecodeErrorsAtTheirLine(t *testing.T) {
	for body, want := range map[string]string{
		`vsphere {
    url = "https://admin:hunter2@vcenter.example.com/sdk"
  }`: "the URL holds a password",
		`vsphere {
    url = "ftp://vcenter.example.com"
  }`: "the scheme must be https",
		`vsphere {
    cluster       = "C1"
    resource_pool = "/DC1/host/C1/Resources"
  }`: "Set cluster or resource_pool, not both",
		`vsphere {
    cpus = 0
  }`: "use a whole number from 1 to 128",
		`vsphere {
    memory = "lots"
  }`: "Invalid memory size",
		`vsphere {
    vcpus = 2
  }`: `An argument named "vcpus" is not expected here`,
		`format = "qcow2"`: `The vsphere provider cannot boot format "qcow2"; it boots: vmdk`,
	} {
		_, errs := load(t, "  "+body)
		if !strings.Contains(errs, want) {
			t.Errorf("%s:\nerrors %q\nwant %q", body, errs, want)
		}
		if strings.Contains(errs, "hunter2") {
			t.Errorf("the error shows the password: %s", errs)
		}
	}
}

// What replaces the VMs: where they run and their size, not the TLS check.
func TestSettingsDigestReplacesOnWhatShapesTheVM(t *testing.T) {
	api := &lang.App{Name: "api", Ports: []int{8080}}
	digest := func(s *vsphere.Settings) string {
		tg := &lang.Target{Name: "vmware", Provider: vsphere.Name, Settings: s}
		return deploy.SettingsDigest(tg, api, nil)
	}
	d0 := digest(vsphere.DefaultSettings())
	s := vsphere.DefaultSettings()
	s.Insecure = true
	if digest(s) != d0 {
		t.Error("insecure replaces the VMs")
	}
	for name, change := range map[string]func(*vsphere.Settings){
		"cpus":      func(s *vsphere.Settings) { s.CPUs = 4 },
		"memory":    func(s *vsphere.Settings) { s.MemoryMiB = 2048 },
		"network":   func(s *vsphere.Settings) { s.Network = "prod" },
		"datastore": func(s *vsphere.Settings) { s.Datastore = "ssd" },
		"url":       func(s *vsphere.Settings) { s.URL = "https://other/sdk" },
	} {
		s := vsphere.DefaultSettings()
		change(s)
		if digest(s) == d0 {
			t.Errorf("changing %s does not replace the VMs", name)
		}
	}
}

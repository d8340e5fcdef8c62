package gcp_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/gcp"
	"github.com/unikfile/unikfile/stages/registry"
)

func load(t *testing.T, block string) (*lang.Project, string) {
	t.Helper()
	dir := t.TempDir()
	src := `app "api" {
  language = "go"
  ports    = [8080, 9090]
}
target "gce" {
  provider = "gcp"
  apps     = [app.api]
` + block + `
}
`
	path := filepath.Join(dir, "Unikfile")
	os.WriteFile(path, []byte(src), 0o644)
	p, _, diags := lang.Load(path, lang.Options{Catalog: registry.Catalog(), Environ: []string{}})
	if !diags.HasErrors() {
		return p, ""
	}
	return p, diags.Error()
}

func TestGCPBlockDecodes(t *testing.T) {
	p, errs := load(t, `  gcp {
    project      = "my-project"
    zone         = "europe-west1-b"
    bucket       = "my-images"
    machine_type = "e2-micro"
    ingress      = ["0.0.0.0/0", "203.0.113.0/24", "0.0.0.0/0"]
    nic          = "gvnic"
  }`)
	if errs != "" {
		t.Fatal(errs)
	}
	tg := p.Targets[0]
	s := gcp.SettingsOf(tg)
	want := &gcp.Settings{Project: "my-project", Zone: "europe-west1-b", Bucket: "my-images", MachineType: "e2-micro",
		Network: "default", Ingress: []string{"0.0.0.0/0", "203.0.113.0/24"}, ExternalIP: true, NIC: "gvnic"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("settings %+v\nwant %+v", s, want)
	}
	if tg.Format != "gce" || tg.Boot != "bios" {
		t.Errorf("format %s, boot %s: want gce, bios by default", tg.Format, tg.Boot)
	}
	if fw, ok := s.Forwards([]int{8080}); ok || fw != nil {
		t.Errorf("Forwards = %v, %v: apps are reached at the instance's address", fw, ok)
	}
}

func TestGCPDefaults(t *testing.T) {
	p, errs := load(t, `  gcp {
    zone          = "us-central1-a"
    bucket        = "b-123"
    create_bucket = true
    external_ip   = true
  }`)
	if errs != "" {
		t.Fatal(errs)
	}
	s := gcp.SettingsOf(p.Targets[0])
	if s.Project != "" || s.MachineType != "e2-small" || s.NIC != "virtio" || s.Ingress != nil || !s.ExternalIP || !s.CreateBucket {
		t.Errorf("settings %+v", s)
	}
	// Without ingress there is no external address unless asked.
	p, _ = load(t, `  gcp {
    zone   = "us-central1-a"
    bucket = "b-123"
  }`)
	if gcp.SettingsOf(p.Targets[0]).ExternalIP {
		t.Error("an external address with ingress for nobody")
	}
}

func TestGCPBlockErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"no block", ``, `needs, in its gcp block: zone = "europe-west1-b", bucket = "my-images"`},
		{"no bucket", `gcp { zone = "europe-west1-b" }`, `needs, in its gcp block: bucket = "my-images"`},
		{"bad zone", `gcp {
  zone   = "europe-west1"
  bucket = "b-123"
}`, `"europe-west1" is not a Compute Engine zone`},
		{"bad ingress", `gcp {
  zone    = "europe-west1-b"
  bucket  = "b-123"
  ingress = ["everyone"]
}`, `"everyone" is not a network in CIDR notation`},
		{"host bits", `gcp {
  zone    = "europe-west1-b"
  bucket  = "b-123"
  ingress = ["10.0.0.1/8"]
}`, `"10.0.0.1/8" is not a network in CIDR notation`},
		{"ipv6", `gcp {
  zone    = "europe-west1-b"
  bucket  = "b-123"
  ingress = ["::/0"]
}`, `IPv4 addresses only`},
		{"bad project", `gcp {
  project = "My Project"
  zone    = "europe-west1-b"
  bucket  = "b-123"
}`, `is not a GCP project ID`},
		{"bad bucket", `gcp {
  zone   = "europe-west1-b"
  bucket = "UPPER"
}`, `is not a Cloud Storage bucket name`},
		{"bad nic", `gcp {
  zone   = "europe-west1-b"
  bucket = "b-123"
  nic    = "e1000"
}`, `nic must be one of: virtio, gvnic`},
		{"bad bool", `gcp {
  zone          = "europe-west1-b"
  bucket        = "b-123"
  create_bucket = "yes"
}`, `Inappropriate value for attribute "create_bucket"`},
		{"unknown setting", `gcp {
  zone   = "europe-west1-b"
  bucket = "b-123"
  region = "europe-west1"
}`, `An argument named "region" is not expected here`},
		{"a format GCE does not import", `format = "qcow2"
gcp {
  zone   = "europe-west1-b"
  bucket = "b-123"
}`, `The gcp provider cannot boot format "qcow2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, tc.block)
			if !strings.Contains(errs, tc.want) {
				t.Errorf("errors %q; want %q", errs, tc.want)
			}
		})
	}
}

// What replaces instances: every setting but the staging bucket.
func TestGCPRedeploy(t *testing.T) {
	base := gcp.Settings{Project: "p-123456", Zone: "europe-west1-b", Bucket: "b-1", MachineType: "e2-small", Network: "default", NIC: "virtio"}
	app := &lang.App{Name: "api", Ports: []int{8080}}
	digest := func(s gcp.Settings) string {
		return deploy.SettingsDigest(&lang.Target{Name: "t", Provider: gcp.Name, Settings: &s}, app, nil)
	}
	d0 := digest(base)
	for name, change := range map[string]func(*gcp.Settings){
		"zone":         func(s *gcp.Settings) { s.Zone = "europe-west1-c" },
		"machine type": func(s *gcp.Settings) { s.MachineType = "e2-medium" },
		"ingress":      func(s *gcp.Settings) { s.Ingress = []string{"0.0.0.0/0"} },
		"external ip":  func(s *gcp.Settings) { s.ExternalIP = true },
		"nic":          func(s *gcp.Settings) { s.NIC = "gvnic" },
		"project":      func(s *gcp.Settings) { s.Project = "other-123" },
	} {
		s := base
		change(&s)
		if digest(s) == d0 {
			t.Errorf("changing the %s does not replace instances", name)
		}
	}
	s := base
	s.Bucket, s.CreateBucket = "b-2", true
	if digest(s) != d0 {
		t.Error("changing the staging bucket replaces instances")
	}
}

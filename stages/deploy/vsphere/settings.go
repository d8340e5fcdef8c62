package vsphere

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// Settings are a target's `vsphere { ... }` block. Empty inventory names
// mean the only one there is (a datacenter with one datastore needs no
// datastore = ...).
type Settings struct {
	// URL is the SDK endpoint, "https://vcenter.example.com/sdk"; empty
	// means $GOVC_URL. It never holds credentials (Decode rejects a
	// password in the Unikfile).
	URL        string `json:"url,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	Datastore  string `json:"datastore,omitempty"`
	Network    string `json:"network,omitempty"`
	// Placement: a resource pool (an inventory path), else a cluster's
	// root pool, else a host's, else the only pool.
	Cluster      string `json:"cluster,omitempty"`
	ResourcePool string `json:"resource_pool,omitempty"`
	Host         string `json:"host,omitempty"`
	// Folder is the VM folder (an inventory path); default the
	// datacenter's root VM folder.
	Folder string `json:"folder,omitempty"`
	// Insecure skips the check of the server's TLS certificate (also
	// GOVC_INSECURE=1).
	Insecure bool `json:"insecure,omitempty"`
	CPUs     int  `json:"cpus"`
	// MemoryMiB overrides the app's memory; 0 means what the image needs.
	MemoryMiB int `json:"memory_mib,omitempty"`
}

// DefaultSettings are the settings of a target without a vsphere block.
func DefaultSettings() *Settings { return &Settings{CPUs: 1} }

// Forwards is false: apps are reached at the guest's own address, which
// its init prints on the console.
func (s *Settings) Forwards([]int) ([]lang.Forward, bool) { return nil, false }

// Redeploy is what shapes every VM: where it runs and its size. The TLS
// check does not change a VM.
func (s *Settings) Redeploy() any {
	r := *s
	r.Insecure = false
	return r
}

// SettingsOf returns the target's vsphere settings, or the defaults.
func SettingsOf(t *lang.Target) *Settings {
	return lang.SettingsOf(t, DefaultSettings)
}

// Schema is the provider as the Unikfile sees it.
type Schema struct{}

var _ lang.ProviderSchema = Schema{}

// Formats: the streamOptimized VMDK, which the provider uploads as a flat
// disk.
func (Schema) Formats() []string { return []string{format.VMDK} }

// Default is a BIOS-booting streamOptimized VMDK.
func (Schema) Default() (string, string) { return format.VMDK, pack.BootBIOS }

// Schema is the vsphere block's body.
func (Schema) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "url"}, {Name: "datacenter"}, {Name: "datastore"}, {Name: "network"},
		{Name: "cluster"}, {Name: "resource_pool"}, {Name: "host"}, {Name: "folder"},
		{Name: "insecure"}, {Name: "cpus"}, {Name: "memory"},
	}}
}

const maxCPUs = 128

// Decode reads the vsphere block.
func (Schema) Decode(b *lang.Block, t lang.TargetInfo) lang.TargetSettings {
	s := DefaultSettings()
	if u, attr := b.String("url", ""); attr != nil && u != "" {
		if err := checkURL(u); err != nil {
			b.Errorf(attr.Expr.Range(), "Invalid vSphere URL", "%s.", err)
		} else {
			s.URL = u
		}
	}
	s.Datacenter, _ = b.String("datacenter", "")
	s.Datastore, _ = b.String("datastore", "")
	s.Network, _ = b.String("network", "")
	s.Cluster, _ = b.String("cluster", "")
	s.ResourcePool, _ = b.String("resource_pool", "")
	s.Host, _ = b.String("host", "")
	s.Folder, _ = b.String("folder", "")
	s.Insecure, _ = b.Bool("insecure", false)
	s.CPUs, _ = b.Int("cpus", s.CPUs, 1, maxCPUs)
	s.MemoryMiB, _ = b.Memory("memory", 0)
	if s.Cluster != "" && s.ResourcePool != "" {
		b.Errorf(b.Attr("cluster").Expr.Range(), "Conflicting placement",
			"Set cluster or resource_pool, not both: a resource pool already names its cluster.")
	}
	return s
}

// checkURL accepts an http(s) URL without a password: a password in the
// Unikfile would end up in version control.
func checkURL(raw string) error {
	u, err := parseURL(raw)
	if err != nil {
		return err
	}
	if _, ok := u.User.Password(); ok {
		return fmt.Errorf("the URL holds a password; keep credentials out of the Unikfile: set GOVC_USERNAME and GOVC_PASSWORD in the environment (or GOVC_URL with them)")
	}
	return nil
}

// parseURL parses an SDK URL as govc does: a bare host means
// https://HOST/sdk.
func parseURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: write e.g. \"https://vcenter.example.com/sdk\"", redact(raw))
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%q: the scheme must be https (or http)", redact(raw))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host: write e.g. \"https://vcenter.example.com/sdk\"", redact(raw))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	return u, nil
}

// redact hides a password in a URL that may not parse.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "xxxxx" + raw[i:]
		}
		return "xxxxx" + raw[i:]
	}
	return raw
}

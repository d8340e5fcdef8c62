package gcp

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// Settings are a target's `gcp { ... }` block.
type Settings struct {
	// Project is the GCP project; "" means the default of the environment
	// (GOOGLE_CLOUD_PROJECT, the credentials' project, gcloud's).
	Project string `json:"project,omitempty"`
	Zone    string `json:"zone"`
	// Bucket is the Cloud Storage bucket the image archive is staged in;
	// CreateBucket creates it (in the zone's region) when it is missing.
	Bucket       string `json:"bucket"`
	CreateBucket bool   `json:"create_bucket,omitempty"`
	MachineType  string `json:"machine_type"`
	// Network and Subnetwork are the VPC network (default "default") and,
	// for custom-mode networks, the subnetwork of the zone's region.
	Network    string `json:"network"`
	Subnetwork string `json:"subnetwork,omitempty"`
	// ExternalIP gives the instance an ephemeral external address; the
	// default is true when Ingress lets anyone in.
	ExternalIP bool `json:"external_ip"`
	// Ingress are the source ranges (CIDR) that may reach the apps' ports;
	// none means nobody (no firewall rule is made).
	Ingress []string `json:"ingress,omitempty"`
	// NIC is the network interface: virtio (VIRTIO_NET) or gvnic (GVNIC).
	NIC string `json:"nic"`
}

// Defaults of the gcp block.
const (
	DefaultMachineType = "e2-small"
	DefaultNetwork     = "default"
	NICVirtio          = "virtio"
	NICGVNIC           = "gvnic"
)

// Forwards: apps on GCE are reached at the instance's own address, not
// through ports of this host.
func (s *Settings) Forwards([]int) ([]lang.Forward, bool) { return nil, false }

// Redeploy is everything that shapes an instance; the bucket only stages
// images and is left out.
func (s *Settings) Redeploy() any {
	return struct {
		Project, Zone, MachineType, Network, Subnetwork, NIC string
		ExternalIP                                           bool
		Ingress                                              []string
	}{s.Project, s.Zone, s.MachineType, s.Network, s.Subnetwork, s.NIC, s.ExternalIP, s.Ingress}
}

// SettingsOf returns the target's gcp settings, or nil when it has none
// (a target of another provider): gcp has no defaults for its zone and
// bucket.
func SettingsOf(t *lang.Target) *Settings {
	return lang.SettingsOf(t, func() *Settings { return nil })
}

// Schema is the provider as the Unikfile sees it.
type Schema struct{}

var _ lang.ProviderSchema = Schema{}

// Formats: GCE imports the gce archive (disk.raw in a GNU tar.gz).
func (Schema) Formats() []string { return []string{format.GCE} }

// Default is the gce archive booted by BIOS; boot = "uefi" makes a
// UEFI_COMPATIBLE image.
func (Schema) Default() (string, string) { return format.GCE, pack.BootBIOS }

// Schema is the gcp block's body.
func (Schema) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "project"}, {Name: "zone"}, {Name: "bucket"}, {Name: "create_bucket"},
		{Name: "machine_type"}, {Name: "network"}, {Name: "subnetwork"},
		{Name: "external_ip"}, {Name: "ingress"}, {Name: "nic"},
	}}
}

var (
	projectRe = regexp.MustCompile(`^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	zoneRe    = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+-[a-z]$`)
	// GCE resource names (RFC 1035 labels), for machine types and networks.
	nameRe   = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$`)
)

// Decode reads the gcp block: zone and bucket are required.
func (Schema) Decode(b *lang.Block, t lang.TargetInfo) lang.TargetSettings {
	s := &Settings{MachineType: DefaultMachineType, Network: DefaultNetwork, NIC: NICVirtio}
	check := func(name string, re *regexp.Regexp, def, what string) string {
		v, attr := b.String(name, def)
		if attr != nil && !re.MatchString(v) {
			b.Errorf(attr.Expr.Range(), "Invalid "+name, "%q is not %s.", v, what)
			return def
		}
		return v
	}
	s.Project = check("project", projectRe, "", "a GCP project ID (6-30 lowercase letters, digits and dashes, starting with a letter, e.g. \"my-project\")")
	s.Zone = check("zone", zoneRe, "", "a Compute Engine zone such as \"europe-west1-b\" (gcloud compute zones list)")
	s.Bucket = check("bucket", bucketRe, "", "a Cloud Storage bucket name (3-63 lowercase letters, digits, dashes, dots and underscores)")
	s.MachineType = check("machine_type", nameRe, DefaultMachineType, "a machine type such as \"e2-small\" (gcloud compute machine-types list)")
	s.Network = check("network", nameRe, DefaultNetwork, "a VPC network name")
	s.Subnetwork = check("subnetwork", nameRe, "", "a subnetwork name")
	s.NIC = b.Choice("nic", NICVirtio, []string{NICVirtio, NICGVNIC})
	s.CreateBucket, _ = b.Bool("create_bucket", false)

	ingress := b.Strings("ingress")
	for _, r := range ingress {
		p, err := netip.ParsePrefix(r)
		if err != nil || p.Masked() != p {
			b.Errorf(b.Attr("ingress").Expr.Range(), "Invalid ingress range",
				"%q is not a network in CIDR notation: write e.g. \"0.0.0.0/0\" (everyone), \"203.0.113.0/24\" or \"198.51.100.7/32\".", r)
			continue
		}
		if !p.Addr().Is4() {
			b.Errorf(b.Attr("ingress").Expr.Range(), "IPv6 ingress range",
				"%q is an IPv6 range, and the instances unikfile makes have IPv4 addresses only: use IPv4 ranges such as \"0.0.0.0/0\".", r)
			continue
		}
		if !slices.Contains(s.Ingress, p.String()) {
			s.Ingress = append(s.Ingress, p.String())
		}
	}
	s.ExternalIP, _ = b.Bool("external_ip", len(s.Ingress) > 0)

	var missing []string
	if s.Zone == "" && b.Attr("zone") == nil {
		missing = append(missing, `zone = "europe-west1-b"`)
	}
	if s.Bucket == "" && b.Attr("bucket") == nil {
		missing = append(missing, `bucket = "my-images"`)
	}
	if len(missing) > 0 {
		b.Errorf(t.Range, "Missing gcp settings",
			"Target %q runs on Google Compute Engine and needs, in its gcp block: %s (the zone instances run in, and the Cloud Storage bucket images are staged in).",
			t.Name, strings.Join(missing, ", "))
	}
	return s
}

// region is the zone's region: europe-west1 of europe-west1-b.
func region(zone string) string {
	if i := strings.LastIndexByte(zone, '-'); i > 0 {
		return zone[:i]
	}
	return zone
}

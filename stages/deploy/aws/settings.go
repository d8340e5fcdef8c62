package aws

import (
	"net"
	"regexp"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// DefaultInstanceType is what a target without instance_type runs on: a
// small Nitro instance (ENA, UEFI-capable) of the free tier.
const DefaultInstanceType = "t3.micro"

// Settings are a target's `aws { ... }` block.
type Settings struct {
	// Region is the AWS region; "" leaves it to the SDK's default chain
	// (AWS_REGION, the profile's region).
	Region string `json:"region,omitempty"`
	// InstanceType is the EC2 instance type.
	InstanceType string `json:"instance_type"`
	// Subnet is the subnet instances run in; "" is the default VPC's
	// default subnet.
	Subnet string `json:"subnet,omitempty"`
	// Ingress are the IPv4 CIDR blocks allowed to reach the apps' ports;
	// empty is nobody.
	Ingress []string `json:"ingress"`
}

// DefaultSettings are the settings of a target without an aws block.
func DefaultSettings() *Settings {
	return &Settings{InstanceType: DefaultInstanceType, Ingress: []string{}}
}

// Forwards: apps on AWS are reached at the instance's own address.
func (s *Settings) Forwards(ports []int) ([]lang.Forward, bool) { return nil, false }

// Redeploy is all of it: every setting shapes the instances (where they
// run, on what, who reaches them).
func (s *Settings) Redeploy() any { return *s }

// SettingsOf returns the target's aws settings, or the defaults.
func SettingsOf(t *lang.Target) *Settings {
	return lang.SettingsOf(t, DefaultSettings)
}

// Schema is the provider as the Unikfile sees it.
type Schema struct{}

var _ lang.ProviderSchema = Schema{}

// Formats: the EBS direct APIs take a raw disk's blocks.
func (Schema) Formats() []string { return []string{format.Raw} }

// Default is a raw disk booted by the instance's BIOS (every instance type
// boots legacy BIOS; uefi needs a Nitro type).
func (Schema) Default() (string, string) { return format.Raw, pack.BootBIOS }

// Schema is the aws block's body.
func (Schema) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "region"}, {Name: "instance_type"}, {Name: "subnet"}, {Name: "ingress"},
	}}
}

var (
	regionPattern       = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	subnetPattern       = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

// Decode reads the aws block.
func (Schema) Decode(b *lang.Block, t lang.TargetInfo) lang.TargetSettings {
	s := DefaultSettings()
	if r, attr := b.String("region", ""); attr != nil {
		if !regionPattern.MatchString(r) {
			b.Errorf(attr.Expr.Range(), "Invalid AWS region",
				"%q is not an AWS region name: regions are written like \"us-east-1\" or \"eu-west-3\" (aws ec2 describe-regions lists yours).", r)
		} else {
			s.Region = r
		}
	}
	if it, attr := b.String("instance_type", s.InstanceType); attr != nil {
		if !instanceTypePattern.MatchString(it) {
			b.Errorf(attr.Expr.Range(), "Invalid instance type",
				"%q is not an EC2 instance type: they are written FAMILY.SIZE, like \"t3.micro\" or \"m6i.large\".", it)
		} else {
			s.InstanceType = it
		}
	}
	if sn, attr := b.String("subnet", ""); attr != nil {
		if !subnetPattern.MatchString(sn) {
			b.Errorf(attr.Expr.Range(), "Invalid subnet ID",
				"%q is not a subnet ID: they look like \"subnet-0123456789abcdef0\" (aws ec2 describe-subnets lists yours); leave subnet out for the default VPC's default subnet.", sn)
		} else {
			s.Subnet = sn
		}
	}
	if attr := b.Attr("ingress"); attr != nil {
		seen := map[string]bool{}
		for _, c := range b.Strings("ingress") {
			ip, n, err := net.ParseCIDR(c)
			switch {
			case err != nil && net.ParseIP(c) != nil:
				b.Errorf(attr.Expr.Range(), "Invalid ingress CIDR block",
					"%q is an address, not a CIDR block: write %q for that one address, or \"0.0.0.0/0\" for everyone.", c, c+"/32")
			case err != nil:
				b.Errorf(attr.Expr.Range(), "Invalid ingress CIDR block",
					"%q is not an IPv4 CIDR block such as \"203.0.113.0/24\" or \"0.0.0.0/0\" (everyone).", c)
			case ip.To4() == nil:
				b.Errorf(attr.Expr.Range(), "IPv6 ingress not supported",
					"%q is an IPv6 block; the aws provider opens IPv4 ports only.", c)
			case n.String() != c:
				b.Errorf(attr.Expr.Range(), "Invalid ingress CIDR block",
					"%q has host bits set; the block it names is %q.", c, n.String())
			case seen[c]:
				b.Errorf(attr.Expr.Range(), "Duplicate ingress CIDR block", "%q is listed twice.", c)
			default:
				seen[c] = true
				s.Ingress = append(s.Ingress, c)
			}
		}
	}
	return s
}

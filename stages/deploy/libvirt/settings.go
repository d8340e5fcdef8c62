package libvirt

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Defaults of a target's libvirt block.
const (
	DefaultURI  = "qemu:///system"
	DefaultPool = "default"
	// NetworkUser is QEMU's user-mode networking with host port forwards,
	// the default: it needs nothing on the host.
	NetworkUser = "user"
	DefaultBind = "127.0.0.1"
)

// Accelerators: the domain type.
const (
	AccelAuto = "auto" // kvm when the host offers it, else qemu (TCG)
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Settings are a target's `libvirt { ... }` block.
type Settings struct {
	// URI is the libvirt connection URI (qemu:///system, qemu+ssh://...,
	// qemu+tcp://...).
	URI string `json:"uri"`
	// Pool is the storage pool images, overlays and console logs go into.
	Pool string `json:"pool"`
	// Network is a libvirt network's name, or NetworkUser; Bridge, when
	// set, is a host bridge instead of a network.
	Network string `json:"network,omitempty"`
	Bridge  string `json:"bridge,omitempty"`
	// Bind and HostPorts shape the host port forwards of user-mode
	// networking: the address they listen on (on the libvirt host), and
	// guest port to host port (unmapped ports keep their number).
	Bind      string      `json:"bind,omitempty"`
	HostPorts map[int]int `json:"host_ports,omitempty"`
	Accel     string      `json:"accel"`
	CPUs      int         `json:"cpus"`
}

// DefaultSettings are the settings of a target without a libvirt block.
func DefaultSettings() *Settings {
	return &Settings{URI: DefaultURI, Pool: DefaultPool, Network: NetworkUser, Bind: DefaultBind,
		HostPorts: map[int]int{}, Accel: AccelAuto, CPUs: 1}
}

// User says whether the target uses user-mode networking.
func (s *Settings) User() bool { return s.Bridge == "" && s.Network == NetworkUser }

// Forwards are the host port forwards of user-mode networking (ok=true);
// on a libvirt network or a bridge apps are reached at the guest's own
// address (ok=false).
func (s *Settings) Forwards(ports []int) ([]lang.Forward, bool) {
	if !s.User() {
		return nil, false
	}
	return lang.HostForwards(s.Bind, s.HostPorts, ports), true
}

// Redeploy is what shapes every instance: where it runs, its network, its
// accelerator and CPUs. Host ports concern one app each and are in its
// forwards.
func (s *Settings) Redeploy() any {
	return struct {
		URI, Pool, Network, Bridge, Bind, Accel string
		CPUs                                    int
	}{s.URI, s.Pool, s.Network, s.Bridge, s.Bind, s.Accel, s.CPUs}
}

// SettingsOf returns the target's libvirt settings, or the defaults.
func SettingsOf(t *lang.Target) *Settings {
	return lang.SettingsOf(t, DefaultSettings)
}

// Schema is the provider as the Unikfile sees it.
type Schema struct{}

var _ lang.ProviderSchema = Schema{}

// Formats libvirt boots: direct kernel boot from uploaded volumes, and raw
// and qcow2 disks.
func (Schema) Formats() []string { return []string{FormatQCOW2, FormatRaw, pack.FormatKernelInitrd} }

// Default is a qcow2 disk, libvirt's native format.
func (Schema) Default() (string, string) { return FormatQCOW2, pack.BootBIOS }

// Disk formats, as the format table names them.
const (
	FormatQCOW2 = "qcow2"
	FormatRaw   = "raw"
)

// Schema is the libvirt block's body.
func (Schema) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "uri"}, {Name: "pool"}, {Name: "network"}, {Name: "bridge"},
		{Name: "bind"}, {Name: "host_ports"}, {Name: "accel"}, {Name: "cpus"},
	}}
}

const maxCPUs = 64

// Decode reads the libvirt block.
func (Schema) Decode(b *lang.Block, t lang.TargetInfo) lang.TargetSettings {
	s := DefaultSettings()
	if uri, attr := b.String("uri", s.URI); attr != nil {
		if err := CheckURI(uri); err != nil {
			b.Errorf(attr.Expr.Range(), "Invalid libvirt URI", "%v.", err)
		} else {
			s.URI = uri
		}
	}
	if pool, attr := b.String("pool", s.Pool); attr != nil {
		if !validName(pool) {
			b.Errorf(attr.Expr.Range(), "Invalid storage pool name", "%q is not a storage pool name (list them with virsh pool-list --all).", pool)
		} else {
			s.Pool = pool
		}
	}
	network, netAttr := b.String("network", s.Network)
	bridge, brAttr := b.String("bridge", "")
	switch {
	case netAttr != nil && brAttr != nil:
		b.Errorf(brAttr.Expr.Range(), "Network and bridge both set",
			"A domain gets one interface: set network (a libvirt network, or %q for user-mode networking with host port forwards) or bridge (a host bridge such as \"br0\"), not both.", NetworkUser)
	case brAttr != nil:
		if !validName(bridge) {
			b.Errorf(brAttr.Expr.Range(), "Invalid bridge name", "%q is not a network interface name.", bridge)
		}
		s.Bridge, s.Network = bridge, ""
	case netAttr != nil:
		if !validName(network) {
			b.Errorf(netAttr.Expr.Range(), "Invalid network name", "%q is not a libvirt network name (list them with virsh net-list --all), nor %q.", network, NetworkUser)
		}
		s.Network = network
	}
	s.Accel = b.Choice("accel", s.Accel, []string{AccelAuto, AccelKVM, AccelTCG})
	s.CPUs, _ = b.Int("cpus", s.CPUs, 1, maxCPUs)

	for _, name := range []string{"bind", "host_ports"} {
		if attr := b.Attr(name); attr != nil && !s.User() {
			b.Errorf(attr.Expr.Range(), "Port forwards without user-mode networking",
				"%s shapes the host port forwards of network = %q; on a libvirt network or a bridge the app is reached at the guest's own address (unikfile ps shows it). Remove %s, or set network = %q.", name, NetworkUser, name, NetworkUser)
		}
	}
	if !s.User() {
		return s
	}
	if bind, attr := b.String("bind", s.Bind); attr != nil {
		if ip := net.ParseIP(bind); ip == nil || ip.To4() == nil {
			b.Errorf(attr.Expr.Range(), "Invalid bind address",
				"%q is not an IPv4 address (QEMU's user network forwards IPv4): use \"127.0.0.1\" (the libvirt host only) or \"0.0.0.0\" (all its interfaces).", bind)
		} else {
			s.Bind = bind
		}
	}
	exposed := map[int]bool{}
	for _, a := range t.Apps {
		for _, n := range a.Ports {
			exposed[n] = true
		}
	}
	for _, m := range b.Ports("host_ports") {
		if !exposed[m.From] && !t.Partial {
			b.Errorf(m.FromRng, "Port not exposed by the target's apps",
				"host_ports maps guest ports to host ports, but no app of target %q listens on port %d.", t.Name, m.From)
			continue
		}
		s.HostPorts[m.From] = m.To
	}
	return s
}

// validName accepts the names libvirt objects and interfaces have.
func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '\'' || r == '"' || r == '<' || r == '>' || r == '&' || r <= ' ' {
			return false
		}
	}
	return true
}

// CheckURI rejects URIs this provider cannot connect through, and any
// carrying a password (credentials never go into a Unikfile or a record).
func CheckURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URI: %v", raw, err)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver != "qemu" {
		return fmt.Errorf("%q: unikfile boots QEMU domains; the URI must start with qemu:// or qemu+TRANSPORT:// (e.g. qemu:///system, qemu+ssh://user@host/system)", raw)
	}
	switch transport {
	case "", "unix", "tcp", "tls", "ssh", "libssh", "libssh2":
	default:
		return fmt.Errorf("%q: transport %q is not one of unix, tcp, tls, ssh, libssh", raw, transport)
	}
	if _, set := u.User.Password(); set {
		return fmt.Errorf("%q holds a password, which would end up in the Unikfile and unikfile's records; use an SSH agent or ?keyfile=PATH instead", raw)
	}
	if u.Path != "/system" && u.Path != "/session" {
		return fmt.Errorf("%q: the path must be /system or /session", raw)
	}
	return nil
}

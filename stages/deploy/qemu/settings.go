package qemu

import (
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// Settings are a target's `qemu { ... }` block.
type Settings struct {
	Accel string `json:"accel"` // auto (default) | kvm | tcg
	// CPUs is the guest's CPU count; 0 (unset) is DefaultCPUs' choice.
	CPUs int `json:"cpus"`
	// Bind is the host address port forwards listen on; default 127.0.0.1.
	Bind string `json:"bind"`
	// HostPorts maps a guest port to the host port it is forwarded from;
	// unmapped guest ports are forwarded from the same port number.
	HostPorts map[int]int `json:"host_ports,omitempty"`
}

// DefaultSettings are the settings of a target without a qemu block.
func DefaultSettings() *Settings {
	return &Settings{Accel: AccelAuto, Bind: DefaultBind, HostPorts: map[int]int{}}
}

// Forwards maps guest ports to host ports on Bind: HostPorts, else the
// same number.
func (s *Settings) Forwards(ports []int) ([]lang.Forward, bool) {
	return lang.HostForwards(s.Bind, s.HostPorts, ports), true
}

// Redeploy is what every instance of the target boots with: a change of
// accelerator, CPUs or bind address replaces them. Host ports concern one
// app each and are in its forwards.
func (s *Settings) Redeploy() any {
	return struct {
		Accel, Bind string
		CPUs        int
	}{s.Accel, s.Bind, s.CPUs}
}

// SettingsOf returns the target's qemu settings: its own, or the defaults
// for a target decoded elsewhere (tests, a record).
func SettingsOf(t *lang.Target) *Settings {
	return lang.SettingsOf(t, DefaultSettings)
}

// Schema is the provider as the Unikfile sees it.
type Schema struct{}

var _ lang.ProviderSchema = Schema{}

// Formats are the formats QEMU opens: kernel+initrd and every disk format
// with a QEMU driver (not gce, a tarball).
func (Schema) Formats() []string {
	out := []string{pack.FormatKernelInitrd}
	for _, f := range format.Formats {
		if f.QEMU != "" {
			out = append(out, f.Name)
		}
	}
	return out
}

// Default is direct kernel boot, the fastest start.
func (Schema) Default() (string, string) { return pack.FormatKernelInitrd, pack.BootBIOS }

// Schema is the qemu block's body.
func (Schema) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "accel"}, {Name: "cpus"}, {Name: "bind"}, {Name: "host_ports"},
	}}
}

// maxCPUs bounds cpus.
const maxCPUs = 64

// DefaultCPUs is the CPU count of a guest whose target does not set cpus:
// two for a linux image on a host with two CPUs or more, else one. The
// runtimes' own threads (a JVM's JIT compiler and GC, V8's compiler and
// GC helpers) then run beside the app's instead of taking turns with it;
// under TCG each vCPU is a host thread of its own (MTTCG). With the
// minimal kernel, examples/java answered in 3.1 s instead of 3.5 s and
// examples/node in 2.05 s instead of 2.4 s; Go's hello boots as fast
// with one as with two. Other bases boot one: their kernels run one CPU
// or must be built for more.
func DefaultCPUs(img *pack.Image, hostCPUs int) int {
	if img.Base == linuxBase && hostCPUs >= 2 {
		return 2
	}
	return 1
}

// Decode reads the qemu block and checks host_ports against the target's
// apps.
func (Schema) Decode(b *lang.Block, t lang.TargetInfo) lang.TargetSettings {
	s := DefaultSettings()
	s.Accel = b.Choice("accel", s.Accel, []string{AccelAuto, AccelKVM, AccelTCG})
	s.CPUs, _ = b.Int("cpus", s.CPUs, 1, maxCPUs)
	if bind, attr := b.String("bind", s.Bind); attr != nil {
		if ip := net.ParseIP(bind); ip == nil || ip.To4() == nil {
			b.Errorf(attr.Expr.Range(), "Invalid bind address",
				"%q is not an IPv4 address (QEMU's user network forwards IPv4): use e.g. \"127.0.0.1\" (this host only) or \"0.0.0.0\" (all interfaces).", bind)
		} else {
			s.Bind = bind
		}
	}
	exposed := map[int]bool{}
	var list []string
	for _, a := range t.Apps {
		for _, n := range a.Ports {
			exposed[n] = true
			list = append(list, fmt.Sprintf("%d (%s)", n, a.Name))
		}
	}
	for _, m := range b.Ports("host_ports") {
		if !exposed[m.From] && !t.Partial {
			have := "none of them expose a port"
			if len(list) > 0 {
				have = "they expose " + strings.Join(list, ", ")
			}
			b.Errorf(m.FromRng, "Port not exposed by the target's apps",
				"host_ports maps guest ports to host ports, but no app of target %q listens on port %d; %s.", t.Name, m.From, have)
			continue
		}
		s.HostPorts[m.From] = m.To
	}
	return s
}

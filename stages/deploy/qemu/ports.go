package qemu

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

// DefaultBind is where port forwards listen unless the target says otherwise.
const DefaultBind = "127.0.0.1"

// guestPorts are the ports the app listens on: the image's, else the app's.
func guestPorts(spec *deploy.Spec) []int {
	if spec.Image != nil && len(spec.Image.Ports) > 0 {
		return spec.Image.Ports
	}
	if spec.App != nil {
		return spec.App.Ports
	}
	return nil
}

// planForwards maps the app's guest ports to host ports (the target's
// host_ports, else the same number) on the target's bind address. final is
// where the instance ends up; boot is what QEMU starts with. They differ for
// ports that an instance being replaced holds: the new instance boots on a
// free port instead and takes the real one over after the old instance has
// stopped. A port held by anything else is a PortInUseError.
func planForwards(spec *deploy.Spec) (final, boot []Forward, err error) {
	app := spec.AppName()
	bind := DefaultBind
	var hostPorts map[int]int
	if spec.Target != nil {
		if spec.Target.QEMU.Bind != "" {
			bind = spec.Target.QEMU.Bind
		}
		hostPorts = spec.Target.QEMU.HostPorts
	}
	if err := validBind(bind); err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", app, err)
	}
	seen := map[int]int{}
	for _, guest := range guestPorts(spec) {
		host := guest
		if h, ok := hostPorts[guest]; ok {
			host = h
		}
		if g, dup := seen[host]; dup {
			return nil, nil, fmt.Errorf("app %s: guest ports %d and %d are both forwarded from host port %d", app, g, guest, host)
		}
		seen[host] = guest
		f := Forward{Bind: bind, Host: host, Guest: guest}
		final = append(final, f)
		if heldByReplaced(spec.Replaces, host) {
			tmp, err := freePort(bind)
			if err != nil {
				return nil, nil, fmt.Errorf("app %s: pick a temporary host port: %w", app, err)
			}
			f.Host = tmp
		} else if err := checkFree(bind, host); err != nil {
			return nil, nil, &deploy.PortInUseError{App: app, Bind: bind, Port: host, Guest: guest, Err: err}
		}
		boot = append(boot, f)
	}
	return final, boot, nil
}

func heldByReplaced(old []*state.Instance, host int) bool {
	for _, inst := range old {
		if inst.Provider == Name && slices.ContainsFunc(inst.Ports, func(p state.Port) bool { return p.Host == host }) {
			return true
		}
	}
	return false
}

// checkFree listens on bind:port and closes again.
func checkFree(bind string, port int) error {
	l, err := net.Listen("tcp4", net.JoinHostPort(bind, strconv.Itoa(port)))
	if err != nil {
		if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
			return oe.Err
		}
		return err
	}
	return l.Close()
}

// freePort returns a port on bind that nothing listens on right now.
func freePort(bind string) (int, error) {
	l, err := net.Listen("tcp4", net.JoinHostPort(bind, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// dialAddr is where to connect to reach a forward from this host.
func dialAddr(f Forward) string {
	host := f.Bind
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(f.Host))
}

func toStatePorts(fw []Forward) []state.Port {
	out := make([]state.Port, len(fw))
	for i, f := range fw {
		out[i] = state.Port{Bind: f.Bind, Host: f.Host, Guest: f.Guest}
	}
	return out
}

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

// planForwards returns spec's forwards: final is where the instance ends
// up; boot is what QEMU starts with. They differ for ports that an
// instance being replaced holds: the new instance boots on a free port
// instead and takes the real one over after the old instance has stopped.
// A port held by anything else is a PortInUseError.
func planForwards(spec *deploy.Spec) (final, boot []Forward, err error) {
	app := spec.AppName()
	seen := map[int]int{}
	for _, f := range spec.Forwards {
		if err := validBind(f.Bind); err != nil {
			return nil, nil, fmt.Errorf("app %s: %w", app, err)
		}
		if g, dup := seen[f.Host]; dup {
			return nil, nil, fmt.Errorf("app %s: guest ports %d and %d are both forwarded from host port %d", app, g, f.Guest, f.Host)
		}
		seen[f.Host] = f.Guest
		fw := Forward{Bind: f.Bind, Host: f.Host, Guest: f.Guest}
		final = append(final, fw)
		if heldByReplaced(spec.Replaces, f.Host) {
			tmp, err := freePort(f.Bind)
			if err != nil {
				return nil, nil, fmt.Errorf("app %s: pick a temporary host port: %w", app, err)
			}
			fw.Host = tmp
		} else if err := checkFree(f.Bind, f.Host); err != nil {
			return nil, nil, &deploy.PortInUseError{App: app, Bind: f.Bind, Port: f.Host, Guest: f.Guest, Err: err}
		}
		boot = append(boot, fw)
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

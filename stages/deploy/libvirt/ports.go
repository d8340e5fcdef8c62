package libvirt

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

// hmpFlag makes QEMUDomainMonitorCommand take a human monitor command.
const hmpFlag = 1

func hmp(c *conn, dom golibvirt.Domain, cmd string) (string, error) {
	out, err := c.QEMUDomainMonitorCommand(dom, cmd, hmpFlag)
	if err != nil {
		return "", fmt.Errorf("QEMU monitor %q: %w", cmd, err)
	}
	return strings.TrimSpace(out), nil
}

func rule(f lang.Forward) string {
	return fmt.Sprintf("tcp:%s:%d-:%d", f.Bind, f.Host, f.Guest)
}

// addForward adds a host port forward to the domain's user-mode network.
func addForward(c *conn, dom golibvirt.Domain, f lang.Forward) error {
	out, err := hmp(c, dom, "hostfwd_add "+userNetdev+" "+rule(f))
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("hostfwd_add %s: %s", rule(f), out)
	}
	return nil
}

// removeForward removes one; it says whether there was such a forward.
func removeForward(c *conn, dom golibvirt.Domain, f lang.Forward) (bool, error) {
	out, err := hmp(c, dom, fmt.Sprintf("hostfwd_remove %s tcp:%s:%d", userNetdev, f.Bind, f.Host))
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "removed"), nil
}

// planForwards returns the forwards the instance ends up with (final) and
// the ones it boots with: a port that an instance being replaced holds is
// booted on a temporary port and taken over once the new one is ready. On
// a local host a port anything else holds is a PortInUseError at once; on
// a remote one, when QEMU cannot listen there.
func planForwards(spec *deploy.Spec, uri string, local bool) (final, boot []lang.Forward, err error) {
	app := spec.AppName()
	seen := map[int]int{}
	for _, f := range spec.Forwards {
		if g, dup := seen[f.Host]; dup {
			return nil, nil, fmt.Errorf("app %s: guest ports %d and %d are both forwarded from host port %d", app, g, f.Guest, f.Host)
		}
		seen[f.Host] = f.Guest
		final = append(final, f)
		b := f
		switch {
		case heldByReplaced(spec.Replaces, uri, f.Host):
			if b.Host, err = tempPort(f.Bind, local); err != nil {
				return nil, nil, fmt.Errorf("app %s: pick a temporary host port: %w", app, err)
			}
		case local:
			if err := checkFree(f.Bind, f.Host); err != nil {
				return nil, nil, &deploy.PortInUseError{App: app, Bind: f.Bind, Port: f.Host, Guest: f.Guest, Err: err}
			}
		}
		boot = append(boot, b)
	}
	return final, boot, nil
}

func heldByReplaced(old []*state.Instance, uri string, host int) bool {
	for _, inst := range old {
		if inst.Provider != Name {
			continue
		}
		cfg, ok, _ := configOf(inst)
		if !ok || cfg.URI != uri {
			continue
		}
		if slices.ContainsFunc(cfg.Forwards, func(f lang.Forward) bool { return f.Host == host }) {
			return true
		}
	}
	return false
}

// tempPort is a port to boot on: one nothing listens on here, or on a
// remote host a random high one (taken ones are retried).
func tempPort(bind string, local bool) (int, error) {
	if !local {
		return 20000 + rand.IntN(40000), nil
	}
	l, err := net.Listen("tcp4", net.JoinHostPort(listenAddr(bind), "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func listenAddr(bind string) string {
	if bind == "" {
		return "127.0.0.1"
	}
	return bind
}

func checkFree(bind string, port int) error {
	l, err := net.Listen("tcp4", net.JoinHostPort(listenAddr(bind), strconv.Itoa(port)))
	if err != nil {
		if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
			return oe.Err
		}
		return err
	}
	return l.Close()
}

// reach is the address this host reaches a forward's bind address on the
// libvirt host at, or "" when it cannot (a remote host's loopback).
func reach(c *conn, bind string) string {
	switch {
	case c.Local && bind == "0.0.0.0":
		return "127.0.0.1"
	case c.Local:
		return bind
	case bind == "0.0.0.0":
		return c.Host
	case net.ParseIP(bind) != nil && net.ParseIP(bind).IsLoopback():
		return ""
	}
	return bind
}

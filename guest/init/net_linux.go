//go:build linux

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/unikfile/unikfile/guest"
)

const (
	// nicWait bounds the wait for the first network interface to appear.
	nicWait = 5 * time.Second
	// nicPoll is how often /sys/class/net is read while waiting.
	nicPoll = 5 * time.Millisecond
)

// firstNIC returns the first interface (by name) backed by a device, which
// leaves out lo and virtual interfaces such as sit0.
func firstNIC() (string, bool) {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return "", false
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join("/sys/class/net", e.Name(), "device")); err == nil {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Strings(names)
	return names[0], true
}

func waitNIC(timeout time.Duration) (string, error) {
	end := time.Now().Add(timeout)
	for {
		if name, ok := firstNIC(); ok {
			return name, nil
		}
		if time.Now().After(end) {
			return "", fmt.Errorf("no network interface appeared within %v (is the NIC's driver in the kernel or in the image's modules?)", timeout)
		}
		time.Sleep(nicPoll)
	}
}

func readMAC(ifname string) (net.HardwareAddr, error) {
	b, err := os.ReadFile(filepath.Join("/sys/class/net", ifname, "address"))
	if err != nil {
		return nil, err
	}
	return net.ParseMAC(strings.TrimSpace(string(b)))
}

// setupNetwork brings up lo and the first NIC, and configures the NIC with
// the address the host gave on the kernel command line (cmdline), else
// from DHCP or the static fallback. It returns the configuration applied (nil
// when none) and writes /etc/resolv.conf.
func setupNetwork(log *logger, cfg *guest.Config, host, cmdline string) (*ipv4Config, error) {
	nc, err := openNetctl()
	if err != nil {
		return nil, err
	}
	defer nc.close()
	if err := nc.up("lo"); err != nil {
		return nil, err
	}
	ifname, err := waitNIC(nicWait)
	if err != nil {
		return nil, err
	}
	if err := nc.up(ifname); err != nil {
		return nil, err
	}
	log.stepf("%s is up", ifname)

	var lease *dhcpLease
	var mac net.HardwareAddr
	var errs []error
	c, given, err := cmdlineIP(cmdline)
	if given && err != nil {
		log.errorf("%v; using the image's network settings", err)
	}
	if c == nil && cfg.Net.DHCP {
		mac, err = readMAC(ifname)
		if err != nil {
			return nil, fmt.Errorf("read MAC address of %s: %w", ifname, err)
		}
		lease, err = dhcp(ifname, mac, host, time.Duration(cfg.Net.DHCPTimeoutMillis)*time.Millisecond)
		if err != nil {
			errs = append(errs, err)
			log.debugf("%v", err)
		} else {
			c = lease.cfg
			log.debugf("dhcp lease %v from %v", lease.length, lease.server)
		}
	}
	if c == nil && cfg.Net.Static != nil {
		c, err = parseStatic(cfg.Net.Static)
		if err != nil {
			return nil, err
		}
	}
	if c == nil {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		log.stepf("%s has no address: neither dhcp nor static is configured", ifname)
		return nil, nil
	}
	if err := nc.configure(ifname, c); err != nil {
		return nil, err
	}
	log.stepf("%s %s", ifname, c)
	announce(log, c)
	if lease != nil && c == lease.cfg {
		cl := &dhcpClient{conn: &socketPerExchange{ifname: ifname}, mac: mac, host: host, now: time.Now, xid: rand.Uint32}
		cl.renewAfter, _ = cmdlineSeconds("unikfile.dhcp_t1")
		go cl.maintain(lease, func(t time.Time) bool { time.Sleep(time.Until(t)); return true },
			func(e leaseEvent) { leaseChanged(log, ifname, e) })
	}
	if len(c.DNS) > 0 {
		if err := writeFile("/etc/resolv.conf", resolvConf(c)); err != nil {
			return c, err
		}
	}
	return c, nil
}

// announce prints the address marker: hosts that reach the guest at its own
// address read the last one.
func announce(log *logger, c *ipv4Config) {
	ones, _ := c.Mask.Size()
	log.line(fmt.Sprintf("%s%s/%d via %s", guest.AddressMarker, c.IP, ones, c.Source))
}

// leaseChanged applies what the DHCP client's upkeep reports: a renewed
// lease with the same settings changes nothing; a new address or network
// settings configure the interface again and are announced.
func leaseChanged(log *logger, ifname string, e leaseEvent) {
	if e.lost {
		log.errorf("dhcp: the lease of %s on %s expired and no server answered; asking for a new one (the address stays configured meanwhile)", e.lease.cfg.IP, ifname)
		return
	}
	log.stepf("dhcp: %s %s on %s for %v (renew in %v)", e.state, e.lease.cfg.IP, ifname, e.lease.length, e.lease.t1)
	if !e.changed {
		return
	}
	nc, err := openNetctl()
	if err != nil {
		log.errorf("dhcp: %v", err)
		return
	}
	defer nc.close()
	if err := nc.configure(ifname, e.lease.cfg); err != nil {
		log.errorf("dhcp: configure %s with the new lease: %v", ifname, err)
		return
	}
	announce(log, e.lease.cfg)
	if len(e.lease.cfg.DNS) > 0 {
		if err := writeFile("/etc/resolv.conf", resolvConf(e.lease.cfg)); err != nil {
			log.errorf("dhcp: %v", err)
		}
	}
}

// cmdlineSeconds reads word=N (seconds) from the kernel command line.
func cmdlineSeconds(word string) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return 0, false
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, word+"="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second, true
			}
		}
	}
	return 0, false
}

// writeFile writes an /etc file, creating its directory.
func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

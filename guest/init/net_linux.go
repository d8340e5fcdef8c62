//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
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

// setupNetwork brings up lo and the first NIC, and configures the NIC from
// DHCP or the static fallback. It returns the configuration applied (nil
// when none) and writes /etc/resolv.conf.
func setupNetwork(log *logger, cfg *guest.Config, host string) (*ipv4Config, error) {
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

	var c *ipv4Config
	var errs []error
	if cfg.Net.DHCP {
		mac, err := readMAC(ifname)
		if err != nil {
			return nil, fmt.Errorf("read MAC address of %s: %w", ifname, err)
		}
		var lease time.Duration
		c, lease, err = dhcp(ifname, mac, host, time.Duration(cfg.Net.DHCPTimeoutMillis)*time.Millisecond)
		if err != nil {
			errs = append(errs, err)
			log.debugf("%v", err)
		} else {
			log.debugf("dhcp lease %v", lease)
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
	ones, _ := c.Mask.Size()
	log.line(fmt.Sprintf("%s%s/%d via %s", guest.AddressMarker, c.IP, ones, c.Source))
	if len(c.DNS) > 0 {
		if err := writeFile("/etc/resolv.conf", resolvConf(c)); err != nil {
			return c, err
		}
	}
	return c, nil
}

// writeFile writes an /etc file, creating its directory.
func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

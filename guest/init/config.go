package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"

	"github.com/unikfile/unikfile/guest"
)

// defaultDHCPTimeoutMillis bounds DHCP when the config says nothing.
const defaultDHCPTimeoutMillis = 3000

// defaultPath is the app's PATH when its environment has none.
const defaultPath = "PATH=/usr/local/bin:/usr/bin:/bin"

// parseConfig decodes and checks guest.Config.
func parseConfig(data []byte) (*guest.Config, error) {
	var c guest.Config
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", guest.ConfigPath, err)
	}
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return nil, errors.New(guest.ConfigPath + ": argv is empty: nothing to run")
	}
	for _, p := range c.Ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%s: port %d out of range 1-65535", guest.ConfigPath, p)
		}
	}
	if c.Net.Static != nil {
		if _, err := parseStatic(c.Net.Static); err != nil {
			return nil, fmt.Errorf("%s: net.static: %w", guest.ConfigPath, err)
		}
	}
	if c.Root != nil && (!strings.HasPrefix(c.Root.Device, "/dev/") || c.Root.FSType == "") {
		return nil, fmt.Errorf("%s: root: device %q and fstype %q: want a /dev/ path and a filesystem type", guest.ConfigPath, c.Root.Device, c.Root.FSType)
	}
	if c.Net.DHCPTimeoutMillis <= 0 {
		c.Net.DHCPTimeoutMillis = defaultDHCPTimeoutMillis
	}
	return &c, nil
}

// addMissing is env with each KEY=value of extra whose KEY env does not
// set.
func addMissing(env, extra []string) []string {
	out := append([]string(nil), env...)
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		if !slices.ContainsFunc(env, func(x string) bool { return strings.HasPrefix(x, k+"=") }) {
			out = append(out, e)
		}
	}
	return out
}

// appEnv is the app's environment: the configured one plus PATH and HOME
// when absent.
func appEnv(env []string) []string {
	out := append([]string(nil), env...)
	has := func(key string) bool {
		for _, e := range out {
			if strings.HasPrefix(e, key+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, defaultPath)
	}
	if !has("HOME") {
		out = append(out, "HOME=/")
	}
	return out
}

// lookPath resolves argv0 against PATH from env when it is not a path;
// exists reports whether a file is an executable regular file.
func lookPath(argv0 string, env []string, exists func(string) bool) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	pathVar := strings.TrimPrefix(defaultPath, "PATH=")
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			continue
		}
		p := path.Join(dir, argv0)
		if exists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH %s", argv0, pathVar)
}

// ipv4Config is an address to give the interface, from DHCP or static.
type ipv4Config struct {
	Source  string // "dhcp" or "static", for messages
	IP      net.IP // 4 bytes
	Mask    net.IPMask
	Gateway net.IP // nil: no default route
	DNS     []net.IP
	Domain  string
	MTU     int // 0: leave as is
}

func (c *ipv4Config) String() string {
	ones, _ := c.Mask.Size()
	s := fmt.Sprintf("%s/%d via %s", c.IP, ones, c.Source)
	if c.Gateway != nil {
		s += ", gateway " + c.Gateway.String()
	}
	if len(c.DNS) > 0 {
		var d []string
		for _, ip := range c.DNS {
			d = append(d, ip.String())
		}
		s += ", dns " + strings.Join(d, " ")
	}
	return s
}

// parseStatic turns guest.Static into an ipv4Config.
func parseStatic(s *guest.Static) (*ipv4Config, error) {
	ip, ipnet, err := net.ParseCIDR(s.Address)
	if err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("address %q is not an IPv4 CIDR such as 10.0.2.15/24", s.Address)
	}
	c := &ipv4Config{Source: "static", IP: ip.To4(), Mask: ipnet.Mask}
	if s.Gateway != "" {
		gw := net.ParseIP(s.Gateway).To4()
		if gw == nil {
			return nil, fmt.Errorf("gateway %q is not an IPv4 address", s.Gateway)
		}
		c.Gateway = gw
	}
	for _, d := range s.DNS {
		ip := net.ParseIP(d)
		if ip == nil {
			return nil, fmt.Errorf("dns %q is not an IP address", d)
		}
		c.DNS = append(c.DNS, ip)
	}
	return c, nil
}

// cmdlineIP reads the first guest.IPParam of a kernel command line: ok is
// false when there is none, or it is unikfile.ip=dhcp (the image's own
// settings, DHCP first); err says what is wrong with one that is.
func cmdlineIP(cmdline string) (c *ipv4Config, ok bool, err error) {
	for _, f := range strings.Fields(cmdline) {
		v, found := strings.CutPrefix(f, guest.IPParam+"=")
		if !found {
			continue
		}
		if v == "dhcp" {
			return nil, false, nil // the image's own settings
		}
		parts := strings.Split(v, ",")
		s := &guest.Static{Address: parts[0]}
		if len(parts) > 1 {
			s.Gateway = parts[1]
		}
		if len(parts) > 2 {
			s.DNS = parts[2:]
		}
		c, err := parseStatic(s)
		if err != nil {
			return nil, true, fmt.Errorf("%s=%s: %w", guest.IPParam, v, err)
		}
		c.Source = "the host"
		return c, true, nil
	}
	return nil, false, nil
}

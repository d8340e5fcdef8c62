package main

import (
	"fmt"
	"strings"
)

// maxNameservers is the resolver's limit (MAXNS in glibc and musl).
const maxNameservers = 3

// resolvConf renders /etc/resolv.conf.
func resolvConf(c *ipv4Config) string {
	var b strings.Builder
	if c.Domain != "" {
		fmt.Fprintf(&b, "search %s\n", c.Domain)
	}
	for i, ip := range c.DNS {
		if i == maxNameservers {
			break
		}
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	return b.String()
}

// hostsFile renders /etc/hosts: localhost, and the hostname on the
// interface's address (or 127.0.1.1 when there is none, as Debian does).
func hostsFile(hostname string, c *ipv4Config) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	if hostname != "" {
		addr := "127.0.1.1"
		if c != nil && c.IP != nil {
			addr = c.IP.String()
		}
		fmt.Fprintf(&b, "%s\t%s\n", addr, hostname)
	}
	return b.String()
}

// hostname turns an app name into a valid host name (RFC 1123 label:
// letters, digits and '-', at most 63 characters, no '-' at either end).
// An empty result means the name had nothing usable.
func hostname(app string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(app) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-")
}

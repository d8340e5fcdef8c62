//go:build linux

package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// dhcpSocket is a UDP socket on port 68 bound to one interface, able to
// send to and receive from the limited broadcast address before the
// interface has an address.
type dhcpSocket struct{ fd int }

func openDHCPSocket(ifname string) (*dhcpSocket, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("dhcp socket: %w", err)
	}
	s := &dhcpSocket{fd: fd}
	for _, o := range []int{syscall.SO_REUSEADDR, syscall.SO_BROADCAST} {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, o, 1); err != nil {
			s.close()
			return nil, fmt.Errorf("dhcp socket option %d: %w", o, err)
		}
	}
	if err := syscall.SetsockoptString(fd, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname); err != nil {
		s.close()
		return nil, fmt.Errorf("dhcp socket: bind to %s: %w", ifname, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: dhcpClientPort}); err != nil {
		s.close()
		return nil, fmt.Errorf("dhcp socket: bind port %d: %w", dhcpClientPort, err)
	}
	return s, nil
}

func (s *dhcpSocket) close() { syscall.Close(s.fd) }

// send broadcasts m, or sends it to the server at to (RENEWING, once the
// interface has its address).
func (s *dhcpSocket) send(m *dhcpMessage, to net.IP) error {
	b, err := m.marshal()
	if err != nil {
		return err
	}
	sa := &syscall.SockaddrInet4{Port: dhcpServerPort, Addr: [4]byte{255, 255, 255, 255}}
	if ip4 := to.To4(); ip4 != nil {
		copy(sa.Addr[:], ip4)
	}
	return syscall.Sendto(s.fd, b, 0, sa)
}

// recv waits until deadline for a message that match accepts.
func (s *dhcpSocket) recv(deadline time.Time, match func(*dhcpMessage) bool) (*dhcpMessage, error) {
	buf := make([]byte, 1500)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errTimeout
		}
		tv := syscall.NsecToTimeval(left.Nanoseconds())
		if tv.Sec == 0 && tv.Usec == 0 {
			tv.Usec = 1
		}
		if err := syscall.SetsockoptTimeval(s.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return nil, err
		}
		n, _, err := syscall.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			return nil, err
		}
		m, err := parseDHCP(buf[:n])
		if err != nil {
			continue // not for us, or garbage
		}
		if match(m) {
			return m, nil
		}
	}
}

// dhcp gets a lease on ifname within timeout.
func dhcp(ifname string, mac net.HardwareAddr, host string, timeout time.Duration) (*dhcpLease, error) {
	s, err := openDHCPSocket(ifname)
	if err != nil {
		return nil, err
	}
	defer s.close()
	c := &dhcpClient{conn: s, mac: mac, host: host, now: time.Now, xid: rand.Uint32}
	l, err := c.acquire(time.Now().Add(timeout))
	if errors.Is(err, errTimeout) {
		return nil, fmt.Errorf("dhcp on %s: %w within %v", ifname, errTimeout, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s: %w", ifname, err)
	}
	return l, nil
}

// socketPerExchange is a dhcpConn that opens the interface's DHCP socket
// for each exchange of a renewal, so that a bound lease holds no socket
// between renewals.
type socketPerExchange struct {
	ifname string
	s      *dhcpSocket
}

func (c *socketPerExchange) send(m *dhcpMessage, to net.IP) error {
	if c.s == nil {
		s, err := openDHCPSocket(c.ifname)
		if err != nil {
			return err
		}
		c.s = s
	}
	return c.s.send(m, to)
}

func (c *socketPerExchange) recv(deadline time.Time, match func(*dhcpMessage) bool) (*dhcpMessage, error) {
	if c.s == nil {
		return nil, errTimeout
	}
	m, err := c.s.recv(deadline, match)
	// The exchange (or this attempt) is over: the next send opens the
	// socket again.
	c.s.close()
	c.s = nil
	return m, err
}

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

func (s *dhcpSocket) send(m *dhcpMessage) error {
	b, err := m.marshal()
	if err != nil {
		return err
	}
	to := &syscall.SockaddrInet4{Port: dhcpServerPort, Addr: [4]byte{255, 255, 255, 255}}
	return syscall.Sendto(s.fd, b, 0, to)
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

var errTimeout = errors.New("no answer")

// retryIntervals are the waits between retransmissions; the last repeats.
var retryIntervals = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// dhcp gets a lease on ifname within timeout.
func dhcp(ifname string, mac net.HardwareAddr, host string, timeout time.Duration) (*ipv4Config, time.Duration, error) {
	s, err := openDHCPSocket(ifname)
	if err != nil {
		return nil, 0, err
	}
	defer s.close()
	end := time.Now().Add(timeout)
	xid := rand.Uint32()
	var ack *dhcpMessage
	for try := 0; ack == nil; try++ {
		if time.Now().After(end) {
			return nil, 0, fmt.Errorf("dhcp on %s: %w within %v", ifname, errTimeout, timeout)
		}
		wait := retryIntervals[min(try, len(retryIntervals)-1)]
		if err := s.send(discover(xid, mac, host)); err != nil {
			return nil, 0, fmt.Errorf("dhcp on %s: send discover: %w", ifname, err)
		}
		offer, err := s.recv(earliest(time.Now().Add(wait), end), func(m *dhcpMessage) bool { return m.isReplyTo(xid, mac, dhcpOffer) })
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("dhcp on %s: %w", ifname, err)
		}
		if err := s.send(request(xid, mac, host, offer)); err != nil {
			return nil, 0, fmt.Errorf("dhcp on %s: send request: %w", ifname, err)
		}
		reply, err := s.recv(earliest(time.Now().Add(wait), end), func(m *dhcpMessage) bool {
			return m.isReplyTo(xid, mac, dhcpAck) || m.isReplyTo(xid, mac, dhcpNak)
		})
		switch {
		case errors.Is(err, errTimeout):
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("dhcp on %s: %w", ifname, err)
		case reply.messageType() == dhcpNak:
			xid = rand.Uint32()
			continue
		}
		ack = reply
	}
	return leaseConfig(ack)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

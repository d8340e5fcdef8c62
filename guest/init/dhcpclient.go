package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// The DHCP client's states (RFC 2131, 4.4): INIT (discover, then request
// what was offered) gives a lease; BOUND until T1; RENEWING (a request sent
// to the server that granted the lease) until T2; REBINDING (a request
// broadcast to any server) until the lease expires; then INIT again. The
// exchange and the timers are here, over a dhcpConn, so that they are
// tested against a server in memory; dhcp_linux.go gives the real socket.

// Options of the lease's timers (RFC 2132, 9.11 and 9.12).
const (
	optRenewalTime   = 58
	optRebindingTime = 59
)

// infiniteLease is option 51's value for a lease that never expires.
const infiniteLease = 0xffffffff

var errTimeout = errors.New("no answer")

// retryIntervals are the waits between retransmissions of INIT; the last
// repeats.
var retryIntervals = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// dhcpConn sends and receives DHCP messages on one interface.
type dhcpConn interface {
	// send sends m to the server at to, or broadcasts it when to is nil.
	send(m *dhcpMessage, to net.IP) error
	// recv waits until deadline for a message that match accepts;
	// errTimeout when none came.
	recv(deadline time.Time, match func(*dhcpMessage) bool) (*dhcpMessage, error)
}

// dhcpClient runs the exchanges of one interface.
type dhcpClient struct {
	conn dhcpConn
	mac  net.HardwareAddr
	host string
	now  func() time.Time
	xid  func() uint32
	// renewAfter, if set, brings every lease's T1 forward to it (the
	// kernel command line's unikfile.dhcp_t1, for tests against a real
	// server whose leases are long).
	renewAfter time.Duration
}

// dhcpLease is what an ACK granted, from when the request was sent.
type dhcpLease struct {
	cfg    *ipv4Config
	server net.IP // option 54: where RENEWING sends its request
	start  time.Time
	// length is the lease's duration; 0 means it never expires.
	length time.Duration
	t1, t2 time.Duration
}

func (l *dhcpLease) renewAt() time.Time  { return l.start.Add(l.t1) }
func (l *dhcpLease) rebindAt() time.Time { return l.start.Add(l.t2) }
func (l *dhcpLease) expires() time.Time  { return l.start.Add(l.length) }

// newLease reads an ACK received for a request sent at start. T1 and T2
// default to half and seven eighths of the lease (RFC 2131, 4.4.5) and are
// kept in order.
func newLease(ack *dhcpMessage, start time.Time) (*dhcpLease, error) {
	cfg, length, err := leaseConfig(ack)
	if err != nil {
		return nil, err
	}
	l := &dhcpLease{cfg: cfg, start: start, length: length}
	if d := ack.option(optServerID); len(d) == 4 {
		l.server = net.IP(append([]byte(nil), d...))
	}
	if d := ack.option(optLeaseTime); len(d) == 4 && binary.BigEndian.Uint32(d) == infiniteLease {
		l.length = 0
	}
	if l.length == 0 {
		return l, nil
	}
	l.t1, l.t2 = l.length/2, l.length*7/8
	if d := ack.option(optRenewalTime); len(d) == 4 {
		l.t1 = time.Duration(binary.BigEndian.Uint32(d)) * time.Second
	}
	if d := ack.option(optRebindingTime); len(d) == 4 {
		l.t2 = time.Duration(binary.BigEndian.Uint32(d)) * time.Second
	}
	if l.t2 <= 0 || l.t2 > l.length {
		l.t2 = l.length * 7 / 8
	}
	if l.t1 <= 0 || l.t1 > l.t2 {
		l.t1 = min(l.length/2, l.t2)
	}
	return l, nil
}

// acquire is INIT: discover, request the first offer, until end. A NAK
// starts again with a new transaction.
func (c *dhcpClient) acquire(end time.Time) (*dhcpLease, error) {
	xid := c.xid()
	for try := 0; ; try++ {
		if !c.now().Before(end) {
			return nil, errTimeout
		}
		wait := retryIntervals[min(try, len(retryIntervals)-1)]
		if err := c.conn.send(discover(xid, c.mac, c.host), nil); err != nil {
			return nil, fmt.Errorf("send discover: %w", err)
		}
		offer, err := c.conn.recv(earliest(c.now().Add(wait), end), func(m *dhcpMessage) bool { return m.isReplyTo(xid, c.mac, dhcpOffer) })
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sent := c.now()
		if err := c.conn.send(request(xid, c.mac, c.host, offer), nil); err != nil {
			return nil, fmt.Errorf("send request: %w", err)
		}
		reply, err := c.conn.recv(earliest(c.now().Add(wait), end), func(m *dhcpMessage) bool {
			return m.isReplyTo(xid, c.mac, dhcpAck) || m.isReplyTo(xid, c.mac, dhcpNak)
		})
		switch {
		case errors.Is(err, errTimeout):
			continue
		case err != nil:
			return nil, err
		case reply.messageType() == dhcpNak:
			xid = c.xid()
			continue
		}
		return newLease(reply, sent)
	}
}

// extendRequest is the request of RENEWING and REBINDING: the address in
// ciaddr, no requested address or server identifier (RFC 2131, 4.3.2), no
// broadcast flag (the client can receive unicast now).
func extendRequest(xid uint32, mac net.HardwareAddr, host string, ip net.IP) *dhcpMessage {
	return &dhcpMessage{Op: bootRequest, XID: xid, CIAddr: ip, CHAddr: mac, Options: clientOptions(dhcpRequest, mac, host)}
}

// minRetransmit is RFC 2131's floor for the wait between the requests of
// RENEWING and REBINDING (4.4.5).
const minRetransmit = 60 * time.Second

// extend asks to extend l until until: to l.server (RENEWING) or, with
// broadcast, any server (REBINDING). Each request waits half the time left,
// at least minRetransmit (or what is left), for the answer. It returns the
// new lease, or nak when a server refused the address, or errTimeout.
func (c *dhcpClient) extend(l *dhcpLease, broadcast bool, until time.Time) (next *dhcpLease, nak bool, err error) {
	var to net.IP
	if !broadcast {
		to = l.server
		if to == nil {
			broadcast = true
		}
	}
	xid := c.xid()
	for {
		left := until.Sub(c.now())
		if left <= 0 {
			return nil, false, errTimeout
		}
		wait := max(left/2, min(minRetransmit, left))
		sent := c.now()
		if err := c.conn.send(extendRequest(xid, c.mac, c.host, l.cfg.IP), to); err != nil {
			return nil, false, fmt.Errorf("send request: %w", err)
		}
		reply, err := c.conn.recv(earliest(sent.Add(wait), until), func(m *dhcpMessage) bool {
			return m.isReplyTo(xid, c.mac, dhcpAck) || m.isReplyTo(xid, c.mac, dhcpNak)
		})
		switch {
		case errors.Is(err, errTimeout):
			continue
		case err != nil:
			return nil, false, err
		case reply.messageType() == dhcpNak:
			return nil, true, nil
		}
		next, err := newLease(reply, sent)
		return next, false, err
	}
}

// leaseEvent is what maintain reports.
type leaseEvent struct {
	// lease is the lease now held; changed says its address or network
	// settings differ from the previous one's (the interface must be
	// configured again).
	lease   *dhcpLease
	changed bool
	// state is "renewed", "rebound" or "acquired" (after a NAK or an
	// expired lease).
	state string
	// lost is set when the lease expired with no answer: the client goes
	// on asking, keeping the address meanwhile.
	lost bool
}

// maintain keeps l alive until stop is closed: it sleeps until T1, renews
// with l's server, rebinds with any server from T2, and from the expiry
// asks for a new lease, without a deadline, backing off up to a minute.
// sleep waits until a time and reports false when stop closed first. Every
// change is reported to report.
func (c *dhcpClient) maintain(l *dhcpLease, sleep func(until time.Time) bool, report func(leaseEvent)) {
	for l.length > 0 {
		if c.renewAfter > 0 {
			l.t1 = min(c.renewAfter, l.t2)
		}
		if !sleep(l.renewAt()) {
			return
		}
		next, nak, err := c.extend(l, false, l.rebindAt())
		state := "renewed"
		if next == nil && !nak && errors.Is(err, errTimeout) {
			next, nak, err = c.extend(l, true, l.expires())
			state = "rebound"
		}
		if next == nil {
			lost := !nak
			if lost {
				report(leaseEvent{lease: l, lost: true})
			}
			if next = c.reacquire(sleep); next == nil {
				return
			}
			state = "acquired"
		}
		report(leaseEvent{lease: next, changed: !sameNetwork(l.cfg, next.cfg), state: state})
		l = next
	}
}

// reacquire runs INIT until it gets a lease or stop is closed (sleep says).
func (c *dhcpClient) reacquire(sleep func(until time.Time) bool) *dhcpLease {
	backoff := 4 * time.Second
	for {
		start := c.now()
		if l, err := c.acquire(start.Add(backoff)); err == nil {
			return l
		}
		if !sleep(start.Add(backoff)) {
			return nil
		}
		backoff = min(2*backoff, minRetransmit)
	}
}

// sameNetwork reports whether two configurations set the interface the
// same way (address, mask, gateway, MTU).
func sameNetwork(a, b *ipv4Config) bool {
	return a.IP.Equal(b.IP) && a.Mask.String() == b.Mask.String() && a.Gateway.Equal(b.Gateway) && a.MTU == b.MTU
}

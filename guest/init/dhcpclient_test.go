package main

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// fakeDHCP is a DHCP server and the network to it, in memory, on a fake
// clock. Messages cross it as bytes (marshal, then parseDHCP), so the wire
// format is what both sides see. It checks the client's requests against
// RFC 2131 the way a strict server would.
type fakeDHCP struct {
	t   *testing.T
	now time.Time

	serverID net.IP
	lease    uint32 // seconds
	t1, t2   uint32 // 0: not sent
	addr     net.IP // the address it gives
	// silentUntil: no answer to anything sent before it; nakRenew: NAK
	// the next request that extends a lease; broadcastOnly: answer only
	// broadcast requests (a server that cannot be reached at its address).
	silentUntil   time.Time
	nakRenew      bool
	broadcastOnly bool

	sent    []sentRequest
	replies []*dhcpMessage
}

type sentRequest struct {
	at      time.Duration // since the start
	msgType byte
	to      net.IP // nil: broadcast
	ciaddr  net.IP
}

var fakeStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func newFakeDHCP(t *testing.T, lease uint32) *fakeDHCP {
	return &fakeDHCP{t: t, now: fakeStart, serverID: net.IP{10, 0, 2, 2}, lease: lease, addr: net.IP{10, 0, 2, 15}}
}

func (f *fakeDHCP) client() *dhcpClient {
	var xid uint32
	return &dhcpClient{conn: f, mac: testMAC, host: "api", now: func() time.Time { return f.now },
		xid: func() uint32 { xid++; return xid }}
}

// sleep is maintain's sleep on the fake clock; it ends the test's run
// (false) once the clock would pass end.
func (f *fakeDHCP) sleeper(end time.Time) func(time.Time) bool {
	return func(t time.Time) bool {
		if t.After(end) {
			return false
		}
		if t.After(f.now) {
			f.now = t
		}
		return true
	}
}

func (f *fakeDHCP) send(m *dhcpMessage, to net.IP) error {
	b, err := m.marshal()
	if err != nil {
		return err
	}
	req, err := parseDHCP(b)
	if err != nil {
		f.t.Fatalf("the client sent what does not parse: %v", err)
	}
	typ := req.messageType()
	f.sent = append(f.sent, sentRequest{at: f.now.Sub(fakeStart), msgType: typ, to: to, ciaddr: req.CIAddr})
	if req.Op != bootRequest || string(req.CHAddr) != string(testMAC) {
		f.t.Errorf("op %d chaddr %v", req.Op, req.CHAddr)
	}
	if f.now.Before(f.silentUntil) || (f.broadcastOnly && to != nil) {
		return nil
	}
	if to != nil && !to.Equal(f.serverID) {
		f.t.Errorf("unicast to %v, which is not the server (%v)", to, f.serverID)
		return nil
	}
	extending := !req.CIAddr.IsUnspecified()
	switch {
	case typ == dhcpDiscover:
		f.reply(req, dhcpOffer)
	case typ == dhcpRequest && !extending:
		// SELECTING: the offer's address and this server's identifier.
		if !net.IP(req.option(optRequestedIP)).Equal(f.addr) || !net.IP(req.option(optServerID)).Equal(f.serverID) {
			f.t.Errorf("SELECTING request without the offered address or the server id: %v %v", req.option(optRequestedIP), req.option(optServerID))
		}
		f.reply(req, dhcpAck)
	case typ == dhcpRequest:
		// RENEWING or REBINDING (RFC 2131, 4.3.2): ciaddr set, neither
		// a requested address nor a server identifier.
		if req.option(optRequestedIP) != nil || req.option(optServerID) != nil {
			f.t.Errorf("RENEWING/REBINDING request with option 50 or 54")
		}
		if req.Flags&flagBroadcast != 0 {
			f.t.Errorf("RENEWING/REBINDING request with the broadcast flag")
		}
		if f.nakRenew {
			f.nakRenew = false
			f.addr = net.IP{10, 0, 2, 16}
			f.reply(req, dhcpNak)
			return nil
		}
		if !req.CIAddr.Equal(f.addr) {
			f.reply(req, dhcpNak)
			return nil
		}
		f.reply(req, dhcpAck)
	default:
		f.t.Errorf("unexpected message type %d", typ)
	}
	return nil
}

func (f *fakeDHCP) reply(req *dhcpMessage, typ byte) {
	opts := []dhcpOption{{optMessageType, []byte{typ}}, {optServerID, f.serverID.To4()}}
	if typ != dhcpNak {
		lease := make([]byte, 4)
		binary.BigEndian.PutUint32(lease, f.lease)
		opts = append(opts, dhcpOption{optLeaseTime, lease}, dhcpOption{optSubnetMask, []byte{255, 255, 255, 0}},
			dhcpOption{optRouter, []byte{10, 0, 2, 2}})
		for code, v := range map[byte]uint32{optRenewalTime: f.t1, optRebindingTime: f.t2} {
			if v != 0 {
				b := make([]byte, 4)
				binary.BigEndian.PutUint32(b, v)
				opts = append(opts, dhcpOption{code, b})
			}
		}
	}
	m := &dhcpMessage{Op: bootReply, XID: req.XID, CHAddr: req.CHAddr, Options: opts}
	if typ != dhcpNak {
		m.YIAddr = f.addr
	}
	f.replies = append(f.replies, m)
}

func (f *fakeDHCP) recv(deadline time.Time, match func(*dhcpMessage) bool) (*dhcpMessage, error) {
	for len(f.replies) > 0 {
		r := f.replies[0]
		f.replies = f.replies[1:]
		b, err := r.marshal()
		if err != nil {
			f.t.Fatal(err)
		}
		m, err := parseDHCP(b)
		if err != nil {
			f.t.Fatal(err)
		}
		if match(m) {
			return m, nil
		}
	}
	if deadline.After(f.now) {
		f.now = deadline
	}
	return nil, errTimeout
}

// requests are the extending requests sent (RENEWING, REBINDING).
func (f *fakeDHCP) requests() []sentRequest {
	var out []sentRequest
	for _, s := range f.sent {
		if s.msgType == dhcpRequest && !s.ciaddr.IsUnspecified() {
			out = append(out, s)
		}
	}
	return out
}

func acquireLease(t *testing.T, f *fakeDHCP) *dhcpLease {
	t.Helper()
	l, err := f.client().acquire(f.now.Add(3 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !l.cfg.IP.Equal(net.IP{10, 0, 2, 15}) || !l.server.Equal(f.serverID) {
		t.Fatalf("lease %v from %v", l.cfg, l.server)
	}
	return l
}

func TestLeaseTimers(t *testing.T) {
	for _, c := range []struct {
		lease, t1, t2  uint32
		wantT1, wantT2 time.Duration
	}{
		{86400, 0, 0, 12 * time.Hour, 21 * time.Hour}, // defaults: 1/2 and 7/8
		{100, 30, 60, 30 * time.Second, 60 * time.Second},
		{100, 90, 60, 50 * time.Second, 60 * time.Second},          // T1 after T2: the default, before T2
		{100, 10, 200, 10 * time.Second, 87500 * time.Millisecond}, // T2 after the expiry
	} {
		f := newFakeDHCP(t, c.lease)
		f.t1, f.t2 = c.t1, c.t2
		l := acquireLease(t, f)
		if l.t1 != c.wantT1 || l.t2 != c.wantT2 || l.length != time.Duration(c.lease)*time.Second {
			t.Errorf("lease %d T1 %d T2 %d: got length %v T1 %v T2 %v, want T1 %v T2 %v", c.lease, c.t1, c.t2, l.length, l.t1, l.t2, c.wantT1, c.wantT2)
		}
	}
	f := newFakeDHCP(t, infiniteLease)
	l := acquireLease(t, f)
	if l.length != 0 {
		t.Errorf("an infinite lease has length %v", l.length)
	}
	n := len(f.sent)
	f.client().maintain(l, f.sleeper(fakeStart.Add(1000*time.Hour)), func(leaseEvent) { t.Error("an infinite lease was renewed") })
	if len(f.sent) != n {
		t.Errorf("maintain of an infinite lease sent %d messages", len(f.sent)-n)
	}
}

// At T1 the client asks the server that granted the lease, by unicast,
// and keeps its address; it does so again at each new T1.
func TestRenewAtT1KeepsTheAddress(t *testing.T) {
	f := newFakeDHCP(t, 100)
	l := acquireLease(t, f)
	var events []leaseEvent
	f.client().maintain(l, f.sleeper(fakeStart.Add(160*time.Second)), func(e leaseEvent) { events = append(events, e) })
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("requests %+v, want renewals at 50s, 100s, 150s", reqs)
	}
	for i, r := range reqs {
		if want := time.Duration(50*(i+1)) * time.Second; r.at != want || !r.to.Equal(f.serverID) || !r.ciaddr.Equal(net.IP{10, 0, 2, 15}) {
			t.Errorf("renewal %d: %+v, want at %v, unicast to the server, ciaddr 10.0.2.15", i, r, want)
		}
	}
	if len(events) != 3 || events[0].state != "renewed" || events[0].changed || events[0].lost {
		t.Fatalf("events %+v", events)
	}
	if got := events[2].lease.start.Sub(fakeStart); got != 150*time.Second {
		t.Errorf("the last lease starts at %v, want 150s (when its request was sent)", got)
	}
}

// A server that does not answer at its address: RENEWING retransmits
// after half the time left (at least 60 s), then REBINDING broadcasts
// from T2 and any server's answer extends the lease.
func TestRebindAtT2WhenTheServerDoesNotAnswer(t *testing.T) {
	f := newFakeDHCP(t, 1000) // T1 500 s, T2 875 s
	l := acquireLease(t, f)
	f.broadcastOnly = true
	var events []leaseEvent
	f.client().maintain(l, f.sleeper(fakeStart.Add(900*time.Second)), func(e leaseEvent) { events = append(events, e) })
	reqs := f.requests()
	wantAt := []time.Duration{500 * time.Second, 687500 * time.Millisecond, 781250 * time.Millisecond, 841250 * time.Millisecond, 875 * time.Second}
	if len(reqs) != len(wantAt) {
		t.Fatalf("requests %+v, want %d", reqs, len(wantAt))
	}
	for i, r := range reqs {
		broadcast := i == len(reqs)-1
		if r.at != wantAt[i] || (r.to == nil) != broadcast {
			t.Errorf("request %d: %+v, want at %v, broadcast %v", i, r, wantAt[i], broadcast)
		}
	}
	if len(events) != 1 || events[0].state != "rebound" || events[0].changed {
		t.Fatalf("events %+v, want one rebound lease with the same address", events)
	}
}

// No server at all until after the expiry: the client says the lease was
// lost, keeps asking (INIT), and gets the same address back.
func TestExpiredLeaseIsAskedForAgain(t *testing.T) {
	f := newFakeDHCP(t, 100)
	l := acquireLease(t, f)
	f.silentUntil = fakeStart.Add(130 * time.Second)
	var events []leaseEvent
	f.client().maintain(l, f.sleeper(fakeStart.Add(150*time.Second)), func(e leaseEvent) { events = append(events, e) })
	if len(events) != 2 || !events[0].lost || events[1].state != "acquired" || events[1].changed {
		t.Fatalf("events %+v, want lost, then acquired with the same address", events)
	}
	if at := events[1].lease.start.Sub(fakeStart); at < 130*time.Second {
		t.Errorf("acquired at %v, before the server answered", at)
	}
	// After the expiry the client broadcast discovers, backing off.
	var discovers int
	for _, s := range f.sent {
		if s.msgType == dhcpDiscover && s.at >= 100*time.Second {
			discovers++
		}
	}
	if discovers == 0 {
		t.Error("no discover after the expiry")
	}
}

// A NAK to a renewal: the client starts over and reports the new address,
// so that the interface is configured again.
func TestNakedRenewalGetsANewAddress(t *testing.T) {
	f := newFakeDHCP(t, 100)
	l := acquireLease(t, f)
	f.nakRenew = true
	var events []leaseEvent
	f.client().maintain(l, f.sleeper(fakeStart.Add(60*time.Second)), func(e leaseEvent) { events = append(events, e) })
	if len(events) != 1 || events[0].lost || events[0].state != "acquired" || !events[0].changed || !events[0].lease.cfg.IP.Equal(net.IP{10, 0, 2, 16}) {
		t.Fatalf("events %+v, want the new address 10.0.2.16, changed", events)
	}
}

// renewAfter (unikfile.dhcp_t1) brings every renewal forward.
func TestRenewAfterOverridesT1(t *testing.T) {
	f := newFakeDHCP(t, 86400)
	l := acquireLease(t, f)
	c := f.client()
	c.renewAfter = 3 * time.Second
	var events []leaseEvent
	c.maintain(l, f.sleeper(fakeStart.Add(10*time.Second)), func(e leaseEvent) { events = append(events, e) })
	if reqs := f.requests(); len(reqs) != 3 || reqs[0].at != 3*time.Second || reqs[2].at != 9*time.Second {
		t.Fatalf("requests %+v, want at 3s, 6s, 9s", reqs)
	}
}

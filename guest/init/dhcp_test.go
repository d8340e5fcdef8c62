package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"reflect"
	"testing"
	"time"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

func TestDiscoverEncoding(t *testing.T) {
	b, err := discover(0xdeadbeef, testMAC, "api").marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < bootpMinLen {
		t.Fatalf("len %d < %d", len(b), bootpMinLen)
	}
	if b[0] != bootRequest || b[1] != 1 || b[2] != 6 {
		t.Errorf("op/htype/hlen = %d/%d/%d", b[0], b[1], b[2])
	}
	if got := binary.BigEndian.Uint32(b[4:]); got != 0xdeadbeef {
		t.Errorf("xid %#x", got)
	}
	if got := binary.BigEndian.Uint16(b[10:]); got != flagBroadcast {
		t.Errorf("flags %#x, want broadcast", got)
	}
	if !bytes.Equal(b[28:34], testMAC) {
		t.Errorf("chaddr % x", b[28:34])
	}
	if !bytes.Equal(b[236:240], magicCookie[:]) {
		t.Errorf("cookie % x", b[236:240])
	}
	// Options start with the message type.
	if !bytes.Equal(b[240:243], []byte{optMessageType, 1, dhcpDiscover}) {
		t.Errorf("first option % x", b[240:243])
	}
	m, err := parseDHCP(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.messageType() != dhcpDiscover || string(m.option(optHostname)) != "api" {
		t.Errorf("round trip: type %d hostname %q", m.messageType(), m.option(optHostname))
	}
	if !bytes.Equal(m.option(optClientID), append([]byte{1}, testMAC...)) {
		t.Errorf("client id % x", m.option(optClientID))
	}
}

// ackBytes builds a server reply the way a server lays it out.
func ackBytes(t *testing.T, msgType byte, xid uint32) []byte {
	t.Helper()
	m := &dhcpMessage{
		Op: bootReply, XID: xid, Flags: flagBroadcast, CHAddr: testMAC,
		YIAddr: net.IPv4(10, 0, 2, 15), SIAddr: net.IPv4(10, 0, 2, 2),
		Options: []dhcpOption{
			{optMessageType, []byte{msgType}},
			{optServerID, []byte{10, 0, 2, 2}},
			{optLeaseTime, []byte{0, 1, 0x51, 0x80}}, // 86400
			{optSubnetMask, []byte{255, 255, 255, 0}},
			{optRouter, []byte{10, 0, 2, 2, 10, 0, 2, 1}},
			{optDNS, []byte{10, 0, 2, 3, 1, 1, 1, 1}},
			{optDomainName, []byte("example.internal\x00")},
			{optMTU, []byte{0x05, 0xb4}}, // 1460
		},
	}
	b, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAckAndLease(t *testing.T) {
	m, err := parseDHCP(ackBytes(t, dhcpAck, 7))
	if err != nil {
		t.Fatal(err)
	}
	if !m.isReplyTo(7, testMAC, dhcpAck) {
		t.Fatal("not recognised as our ack")
	}
	if m.isReplyTo(8, testMAC, dhcpAck) || m.isReplyTo(7, testMAC, dhcpOffer) ||
		m.isReplyTo(7, net.HardwareAddr{1, 2, 3, 4, 5, 6}, dhcpAck) {
		t.Error("matched a wrong xid, type or MAC")
	}
	c, lease, err := leaseConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	want := &ipv4Config{
		Source: "dhcp", IP: net.IP{10, 0, 2, 15}, Mask: net.IPMask{255, 255, 255, 0},
		Gateway: net.IP{10, 0, 2, 2}, DNS: []net.IP{{10, 0, 2, 3}, {1, 1, 1, 1}},
		Domain: "example.internal", MTU: 1460,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config\n got %#v\nwant %#v", c, want)
	}
	if lease != 24*time.Hour {
		t.Errorf("lease %v", lease)
	}
	if got := c.String(); got != "10.0.2.15/24 via dhcp, gateway 10.0.2.2, dns 10.0.2.3 1.1.1.1" {
		t.Errorf("String() = %q", got)
	}
}

func TestRequestCarriesOffer(t *testing.T) {
	offer, err := parseDHCP(ackBytes(t, dhcpOffer, 9))
	if err != nil {
		t.Fatal(err)
	}
	b, err := request(9, testMAC, "", offer).marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseDHCP(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.messageType() != dhcpRequest {
		t.Errorf("type %d", m.messageType())
	}
	if !bytes.Equal(m.option(optRequestedIP), []byte{10, 0, 2, 15}) {
		t.Errorf("requested ip % x", m.option(optRequestedIP))
	}
	if !bytes.Equal(m.option(optServerID), []byte{10, 0, 2, 2}) {
		t.Errorf("server id % x", m.option(optServerID))
	}
	if m.option(optHostname) != nil {
		t.Error("empty host name sent")
	}
}

func TestParseDHCPRejectsBadInput(t *testing.T) {
	good := ackBytes(t, dhcpAck, 1)
	noCookie := append([]byte(nil), good...)
	noCookie[236] = 0
	truncated := append([]byte(nil), good[:243]...) // type option header only
	truncated[241] = 200
	for name, b := range map[string][]byte{
		"short":     good[:100],
		"no cookie": noCookie,
		"truncated": truncated,
	} {
		if _, err := parseDHCP(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLeaseDefaults(t *testing.T) {
	m := &dhcpMessage{Op: bootReply, YIAddr: net.IP{192, 168, 1, 20}, Options: []dhcpOption{{optMessageType, []byte{dhcpAck}}}}
	c, lease, err := leaseConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	if ones, _ := c.Mask.Size(); ones != 24 || c.Gateway != nil || lease != 0 || c.MTU != 0 {
		t.Errorf("defaults: mask /%d gateway %v lease %v mtu %d", ones, c.Gateway, lease, c.MTU)
	}
	if _, _, err := leaseConfig(&dhcpMessage{YIAddr: net.IPv4zero}); err == nil {
		t.Error("ack without address accepted")
	}
}

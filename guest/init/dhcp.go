package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DHCPv4 (RFC 2131, options RFC 2132): only what a client needs to get one
// lease from DISCOVER, OFFER, REQUEST and ACK.

const (
	bootRequest = 1
	bootReply   = 2

	dhcpServerPort = 67
	dhcpClientPort = 68

	// flagBroadcast asks the server to broadcast its replies: the client has
	// no address yet, so it cannot receive unicast on a UDP socket.
	flagBroadcast = 0x8000

	// bootpHeaderLen is the fixed part before the magic cookie.
	bootpHeaderLen = 236
	// bootpMinLen is the smallest message some servers accept (RFC 1542).
	bootpMinLen = 300
)

var magicCookie = [4]byte{99, 130, 83, 99}

// DHCP message types (option 53).
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpAck      = 5
	dhcpNak      = 6
)

// Options used.
const (
	optPad          = 0
	optSubnetMask   = 1
	optRouter       = 3
	optDNS          = 6
	optHostname     = 12
	optDomainName   = 15
	optMTU          = 26
	optRequestedIP  = 50
	optLeaseTime    = 51
	optMessageType  = 53
	optServerID     = 54
	optParamRequest = 55
	optMaxMsgSize   = 57
	optClientID     = 61
	optEnd          = 255
)

// dhcpOption is one option, in the order it is written.
type dhcpOption struct {
	Code byte
	Data []byte
}

// dhcpMessage is a BOOTP message with DHCP options.
type dhcpMessage struct {
	Op      byte
	XID     uint32
	Secs    uint16
	Flags   uint16
	CIAddr  net.IP
	YIAddr  net.IP
	SIAddr  net.IP
	GIAddr  net.IP
	CHAddr  net.HardwareAddr
	Options []dhcpOption
}

// option returns the data of the first option with code, or nil.
func (m *dhcpMessage) option(code byte) []byte {
	for _, o := range m.Options {
		if o.Code == code {
			return o.Data
		}
	}
	return nil
}

// messageType is option 53, or 0 when absent.
func (m *dhcpMessage) messageType() byte {
	if d := m.option(optMessageType); len(d) == 1 {
		return d[0]
	}
	return 0
}

func putIPv4(b []byte, ip net.IP) {
	if ip4 := ip.To4(); ip4 != nil {
		copy(b, ip4)
	}
}

// marshal encodes the message, padded to bootpMinLen.
func (m *dhcpMessage) marshal() ([]byte, error) {
	if len(m.CHAddr) > 16 {
		return nil, fmt.Errorf("hardware address %s longer than 16 bytes", m.CHAddr)
	}
	b := make([]byte, bootpHeaderLen, bootpMinLen)
	b[0] = m.Op
	b[1] = 1 // htype: ethernet
	b[2] = byte(len(m.CHAddr))
	binary.BigEndian.PutUint32(b[4:], m.XID)
	binary.BigEndian.PutUint16(b[8:], m.Secs)
	binary.BigEndian.PutUint16(b[10:], m.Flags)
	putIPv4(b[12:16], m.CIAddr)
	putIPv4(b[16:20], m.YIAddr)
	putIPv4(b[20:24], m.SIAddr)
	putIPv4(b[24:28], m.GIAddr)
	copy(b[28:44], m.CHAddr)
	b = append(b, magicCookie[:]...)
	for _, o := range m.Options {
		if len(o.Data) > 255 {
			return nil, fmt.Errorf("dhcp option %d longer than 255 bytes", o.Code)
		}
		b = append(b, o.Code, byte(len(o.Data)))
		b = append(b, o.Data...)
	}
	b = append(b, optEnd)
	for len(b) < bootpMinLen {
		b = append(b, optPad)
	}
	return b, nil
}

// parseDHCP decodes a message. Options after END and option overload
// (sname/file carrying options) are ignored.
func parseDHCP(b []byte) (*dhcpMessage, error) {
	if len(b) < bootpHeaderLen+len(magicCookie) {
		return nil, fmt.Errorf("dhcp message too short: %d bytes", len(b))
	}
	if [4]byte(b[bootpHeaderLen:bootpHeaderLen+4]) != magicCookie {
		return nil, errors.New("dhcp message without the magic cookie")
	}
	hlen := int(b[2])
	if hlen > 16 {
		return nil, fmt.Errorf("dhcp hardware address length %d", hlen)
	}
	ip := func(off int) net.IP { return net.IPv4(b[off], b[off+1], b[off+2], b[off+3]).To4() }
	m := &dhcpMessage{
		Op:     b[0],
		XID:    binary.BigEndian.Uint32(b[4:]),
		Secs:   binary.BigEndian.Uint16(b[8:]),
		Flags:  binary.BigEndian.Uint16(b[10:]),
		CIAddr: ip(12),
		YIAddr: ip(16),
		SIAddr: ip(20),
		GIAddr: ip(24),
		CHAddr: net.HardwareAddr(append([]byte(nil), b[28:28+hlen]...)),
	}
	opts := b[bootpHeaderLen+4:]
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == optPad {
			i++
			continue
		}
		if code == optEnd {
			break
		}
		if i+1 >= len(opts) {
			return nil, fmt.Errorf("dhcp option %d truncated", code)
		}
		n := int(opts[i+1])
		if i+2+n > len(opts) {
			return nil, fmt.Errorf("dhcp option %d truncated", code)
		}
		m.Options = append(m.Options, dhcpOption{Code: code, Data: append([]byte(nil), opts[i+2:i+2+n]...)})
		i += 2 + n
	}
	return m, nil
}

// paramRequest is what the client asks for (option 55).
var paramRequest = []byte{optSubnetMask, optRouter, optDNS, optDomainName, optMTU, optLeaseTime, optServerID}

func clientOptions(msgType byte, mac net.HardwareAddr, host string) []dhcpOption {
	opts := []dhcpOption{
		{optMessageType, []byte{msgType}},
		{optClientID, append([]byte{1}, mac...)},
		{optMaxMsgSize, []byte{0x05, 0xdc}}, // 1500
		{optParamRequest, paramRequest},
	}
	if host != "" {
		opts = append(opts, dhcpOption{optHostname, []byte(host)})
	}
	return opts
}

// discover is the first message of an exchange.
func discover(xid uint32, mac net.HardwareAddr, host string) *dhcpMessage {
	return &dhcpMessage{Op: bootRequest, XID: xid, Flags: flagBroadcast, CHAddr: mac,
		Options: clientOptions(dhcpDiscover, mac, host)}
}

// request accepts an offer.
func request(xid uint32, mac net.HardwareAddr, host string, offer *dhcpMessage) *dhcpMessage {
	opts := clientOptions(dhcpRequest, mac, host)
	opts = append(opts, dhcpOption{optRequestedIP, []byte(offer.YIAddr.To4())})
	if sid := offer.option(optServerID); len(sid) == 4 {
		opts = append(opts, dhcpOption{optServerID, sid})
	}
	return &dhcpMessage{Op: bootRequest, XID: xid, Flags: flagBroadcast, CHAddr: mac, Options: opts}
}

// isReplyTo reports whether m is a server reply of type want to our xid
// and hardware address.
func (m *dhcpMessage) isReplyTo(xid uint32, mac net.HardwareAddr, want byte) bool {
	return m.Op == bootReply && m.XID == xid && string(m.CHAddr) == string(mac) && m.messageType() == want
}

// leaseConfig reads an ACK into an ipv4Config.
func leaseConfig(ack *dhcpMessage) (*ipv4Config, time.Duration, error) {
	ip := ack.YIAddr.To4()
	if ip == nil || ip.IsUnspecified() {
		return nil, 0, errors.New("dhcp ack without an address")
	}
	c := &ipv4Config{Source: "dhcp", IP: ip}
	if d := ack.option(optSubnetMask); len(d) == 4 {
		c.Mask = net.IPMask(d)
	} else {
		c.Mask = ip.DefaultMask()
	}
	if d := ack.option(optRouter); len(d) >= 4 {
		c.Gateway = net.IP(d[:4])
	}
	d := ack.option(optDNS)
	for i := 0; i+4 <= len(d); i += 4 {
		c.DNS = append(c.DNS, net.IP(d[i:i+4]))
	}
	if d := ack.option(optDomainName); len(d) > 0 {
		c.Domain = strings.TrimRight(string(d), "\x00")
	}
	if d := ack.option(optMTU); len(d) == 2 {
		if mtu := int(binary.BigEndian.Uint16(d)); mtu >= 576 {
			c.MTU = mtu
		}
	}
	var lease time.Duration
	if d := ack.option(optLeaseTime); len(d) == 4 {
		lease = time.Duration(binary.BigEndian.Uint32(d)) * time.Second
	}
	return c, lease, nil
}

//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// The interface is configured with the classic ioctls (what ifconfig and
// route do): no netlink message to hand-write, and enough for one IPv4
// address and a default route.

// ifreq is struct ifreq: a name and a 24-byte union.
type ifreq struct {
	Name [syscall.IFNAMSIZ]byte
	Data [24]byte
}

// rtentry is struct rtentry of <net/route.h> on 64-bit Linux (120 bytes).
type rtentry struct {
	pad1    uint64
	dst     syscall.RawSockaddrInet4
	gateway syscall.RawSockaddrInet4
	genmask syscall.RawSockaddrInet4
	flags   uint16
	pad2    int16
	pad3    uint64
	pad4    uintptr
	metric  int16
	dev     *byte
	mtu     uint64
	window  uint64
	irtt    uint16
}

func sockaddr4(ip net.IP) syscall.RawSockaddrInet4 {
	sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET}
	copy(sa.Addr[:], ip.To4())
	return sa
}

// netctl issues interface ioctls on one AF_INET datagram socket.
type netctl struct{ fd int }

func openNetctl() (*netctl, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket for interface ioctls: %w", err)
	}
	return &netctl{fd: fd}, nil
}

func (n *netctl) close() { syscall.Close(n.fd) }

func (n *netctl) ioctl(req uintptr, arg unsafe.Pointer) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(n.fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func newIfreq(name string) (*ifreq, error) {
	var r ifreq
	if len(name) >= len(r.Name) {
		return nil, fmt.Errorf("interface name %q too long", name)
	}
	copy(r.Name[:], name)
	return &r, nil
}

// up sets IFF_UP on the interface.
func (n *netctl) up(name string) error {
	r, err := newIfreq(name)
	if err != nil {
		return err
	}
	if err := n.ioctl(syscall.SIOCGIFFLAGS, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("get flags of %s: %w", name, err)
	}
	flags := *(*uint16)(unsafe.Pointer(&r.Data[0]))
	*(*uint16)(unsafe.Pointer(&r.Data[0])) = flags | syscall.IFF_UP
	if err := n.ioctl(syscall.SIOCSIFFLAGS, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return nil
}

func (n *netctl) setSockaddr(name string, req uintptr, ip net.IP, what string) error {
	r, err := newIfreq(name)
	if err != nil {
		return err
	}
	*(*syscall.RawSockaddrInet4)(unsafe.Pointer(&r.Data[0])) = sockaddr4(ip)
	if err := n.ioctl(req, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("set %s %s of %s: %w", what, ip, name, err)
	}
	return nil
}

func (n *netctl) setMTU(name string, mtu int) error {
	r, err := newIfreq(name)
	if err != nil {
		return err
	}
	*(*int32)(unsafe.Pointer(&r.Data[0])) = int32(mtu)
	if err := n.ioctl(syscall.SIOCSIFMTU, unsafe.Pointer(r)); err != nil {
		return fmt.Errorf("set mtu %d of %s: %w", mtu, name, err)
	}
	return nil
}

// addRoute adds a route to dst/mask through gw (nil: on-link) on the
// interface. An existing identical route is fine.
func (n *netctl) addRoute(name string, dst net.IP, mask net.IPMask, gw net.IP) error {
	dev, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	rt := rtentry{
		dst:     sockaddr4(dst),
		genmask: sockaddr4(net.IP(mask)),
		flags:   syscall.RTF_UP,
		dev:     dev,
	}
	if gw != nil {
		rt.gateway = sockaddr4(gw)
		rt.flags |= syscall.RTF_GATEWAY
	}
	if ones, bits := mask.Size(); ones == bits {
		rt.flags |= syscall.RTF_HOST
	}
	err = n.ioctl(syscall.SIOCADDRT, unsafe.Pointer(&rt))
	runtime.KeepAlive(dev)
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return err
	}
	return nil
}

// configure gives the interface its address, netmask and MTU, and adds the
// default route. A gateway outside the subnet (clouds hand out /32
// addresses) first gets a host route on the interface.
func (n *netctl) configure(name string, c *ipv4Config) error {
	if err := n.setSockaddr(name, syscall.SIOCSIFADDR, c.IP, "address"); err != nil {
		return err
	}
	if err := n.setSockaddr(name, syscall.SIOCSIFNETMASK, net.IP(c.Mask), "netmask"); err != nil {
		return err
	}
	if c.MTU > 0 {
		if err := n.setMTU(name, c.MTU); err != nil {
			return err
		}
	}
	if err := n.up(name); err != nil {
		return err
	}
	if c.Gateway == nil {
		return nil
	}
	any4 := net.IPv4zero.To4()
	anyMask := net.CIDRMask(0, 32)
	err := n.addRoute(name, any4, anyMask, c.Gateway)
	if errors.Is(err, syscall.ENETUNREACH) {
		if err := n.addRoute(name, c.Gateway, net.CIDRMask(32, 32), nil); err != nil {
			return fmt.Errorf("add route to gateway %s on %s: %w", c.Gateway, name, err)
		}
		err = n.addRoute(name, any4, anyMask, c.Gateway)
	}
	if err != nil {
		return fmt.Errorf("add default route via %s on %s: %w", c.Gateway, name, err)
	}
	return nil
}

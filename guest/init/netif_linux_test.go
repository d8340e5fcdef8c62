//go:build linux

package main

import (
	"testing"
	"unsafe"
)

// The ioctl structs must match the kernel's layout on 64-bit Linux.
func TestIoctlStructLayout(t *testing.T) {
	if s := unsafe.Sizeof(ifreq{}); s != 40 {
		t.Errorf("sizeof(ifreq) = %d, want 40", s)
	}
	var rt rtentry
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof", unsafe.Sizeof(rt), 120},
		{"rt_dst", unsafe.Offsetof(rt.dst), 8},
		{"rt_gateway", unsafe.Offsetof(rt.gateway), 24},
		{"rt_genmask", unsafe.Offsetof(rt.genmask), 40},
		{"rt_flags", unsafe.Offsetof(rt.flags), 56},
		{"rt_metric", unsafe.Offsetof(rt.metric), 80},
		{"rt_dev", unsafe.Offsetof(rt.dev), 88},
		{"rt_mtu", unsafe.Offsetof(rt.mtu), 96},
		{"rt_irtt", unsafe.Offsetof(rt.irtt), 112},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

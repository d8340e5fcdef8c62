//go:build !amd64

package qemu

// HostTSCkHz is unknown on hosts without an x86 time stamp counter.
func HostTSCkHz() int { return 0 }

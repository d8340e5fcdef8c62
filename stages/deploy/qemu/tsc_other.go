//go:build !amd64

package qemu

// hostTSCkHz is unknown on hosts without an x86 time stamp counter.
func hostTSCkHz() int { return 0 }

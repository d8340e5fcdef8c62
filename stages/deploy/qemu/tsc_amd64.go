package qemu

import (
	"sort"
	"time"
)

func rdtsc() uint64

// HostTSCkHz measures the frequency of this machine's time stamp counter
// in kHz against the monotonic clock (three 20 ms samples, the median).
// Under TCG the guest's TSC is the host's, but nothing tells the guest
// its frequency on a microvm (no PIT it can trust on a loaded host, no
// HPET, no ACPI PM timer): without it the kernel marks the TSC unstable
// and keeps time in jiffies.
func HostTSCkHz() int {
	var samples []int
	for i := 0; i < 3; i++ {
		t0, c0 := time.Now(), rdtsc()
		time.Sleep(20 * time.Millisecond)
		t1, c1 := time.Now(), rdtsc()
		us := t1.Sub(t0).Microseconds()
		if us <= 0 || c1 <= c0 {
			return 0
		}
		samples = append(samples, int((c1-c0)*1000/uint64(us)))
	}
	sort.Ints(samples)
	return samples[1]
}

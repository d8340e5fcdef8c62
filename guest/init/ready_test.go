package main

import (
	"reflect"
	"testing"
)

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1235 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:1F90 0202000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 1236 1 0000000000000000 20 4 30 10 -1
   3: 0F02000A:2328 0202000A:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
garbage
   4: nonsense:ZZZZ 00000000:0000 0A
`

const procNetTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1FBB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 97 1 0000000000000000 100 0 0 10 0
`

func TestListeningPorts(t *testing.T) {
	have, loopback := map[int]bool{}, map[int]bool{}
	listeningPorts(procNetTCP, have, loopback)
	listeningPorts(procNetTCP6, have, loopback)
	want := map[int]bool{8080: true, 8123: true}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("got %v, want %v", have, want)
	}
	// 127.0.0.1:53, ::1:8081 and ::ffff:127.0.0.1:8082 are unreachable from the host.
	if !reflect.DeepEqual(loopback, map[int]bool{53: true, 8081: true, 8082: true}) {
		t.Errorf("loopback listeners: got %v", loopback)
	}
	if !allListening([]int{8080, 8123}, have) {
		t.Error("8080 and 8123 listen")
	}
	if allListening([]int{8080, 9000}, have) {
		t.Error("9000 only has an established socket")
	}
	if !allListening(nil, have) {
		t.Error("no ports: ready")
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		exited   bool
		code     int
		signaled bool
		sig      int
		want     int
	}{
		{true, 0, false, 0, 0},
		{true, 3, false, 0, 3},
		{false, 0, true, 9, 137},
		{false, 0, true, 15, 143},
		{false, 0, false, 0, 255},
	} {
		if got := exitStatus(tc.exited, tc.code, tc.signaled, tc.sig); got != tc.want {
			t.Errorf("exitStatus(%v,%d,%v,%d) = %d, want %d", tc.exited, tc.code, tc.signaled, tc.sig, got, tc.want)
		}
	}
}

func TestPortMismatch(t *testing.T) {
	set := func(ports ...int) map[int]bool {
		m := map[int]bool{}
		for _, p := range ports {
			m[p] = true
		}
		return m
	}
	for _, c := range []struct {
		want []int
		have map[int]bool
		msg  string
	}{
		{[]int{8080}, set(9090), "the app listens on 9090; the Unikfile declares 8080: set the app's ports to the ones it listens on (ports = [9090]), or make it listen on 8080"},
		{[]int{9000, 8080}, set(8080, 9001), "the app listens on 8080, 9001; the Unikfile declares 8080, 9000: set the app's ports to the ones it listens on (ports = [8080, 9001]), or make it listen on 9000"},
		{[]int{8080, 8081}, set(7000), "the app listens on 7000; the Unikfile declares 8080, 8081: set the app's ports to the ones it listens on (ports = [7000]), or make it listen on 8080 and 8081"},
		{[]int{8080}, set(), ""},           // still starting
		{[]int{8080}, set(8080, 9090), ""}, // ready: an extra port is fine
		{[]int{8080, 8081}, set(8080), ""}, // a declared port listens, nothing else: starting
	} {
		if got := portMismatch(c.want, c.have); got != c.msg {
			t.Errorf("portMismatch(%v, %v) =\n %q\nwant\n %q", c.want, c.have, got, c.msg)
		}
	}
}

package osv

import (
	"regexp"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy/console"
)

// exitStatus reads a console the way unikfile's providers do: with the
// image's console protocol.
func exitStatus(text string) (int, bool) {
	st := console.LastExitWith([]byte(text), Console(true))
	if st == nil {
		return 0, false
	}
	return *st, true
}

func TestExitStatus(t *testing.T) {
	const boot = "OSv v0.57.0-398-g0e34e4dc\r\neth0: 10.0.2.15\r\nBooted up in 0.00 ms\r\nCmdline: /app/main\r\n"
	for _, tc := range []struct {
		name    string
		console string
		status  int
		ok      bool
	}{
		{"running", boot + "serving on :8080\r\n", 0, false},
		{"exit(3)", boot + "batch done\r\nprogram exited with status 3\r\nVFS: unmounting /dev\r\nPowering off.\r\n", 3, true},
		{"exit(256) wraps", boot + "program exited with status 256\r\nPowering off.\r\n", 0, true},
		{"main returned 4", boot + "program /app/main returned 4\r\nPowering off.\r\n", 4, true},
		{"main returned 0", boot + "done\r\nVFS: unmounting /\r\nPowering off.\r\n", 0, true},
		{"not loaded", "OSv v0.57.0\nCmdline: /app/missing\nFailed to load object: /app/missing. Powering off.\n", StatusNotStarted, true},
		{"aborted", boot + "Assertion failed: px != 0 (x.hpp: operator->: 199)\n\n[backtrace]\n0x0000000040239628 <__assert_fail+24>\n", StatusCrashed, true},
		{"the app prints the words", boot + "it said: program exited with status 9 (a log line)\r\n", 0, false},
		{"a second boot's console counts", boot + "program exited with status 3\r\nPowering off.\r\n" + boot + "serving\r\n", 0, false},
		{"the app ended before it listened", boot + "program /app/main returned 1\r\nRequested termination of /.unikfile/ready, waiting...\r\nPowering off.\r\n", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ok := exitStatus(tc.console)
			if status != tc.status || ok != tc.ok {
				t.Errorf("ExitStatus = %d, %v; want %d, %v", status, ok, tc.status, tc.ok)
			}
		})
	}
}

// The protocol's patterns compile, and a scanner fed a boot finds the
// start and the address.
func TestConsoleProtocol(t *testing.T) {
	p := Console(true)
	for _, e := range p.Exits {
		if _, err := regexp.Compile(e.Pattern); err != nil {
			t.Errorf("%q: %v", e.Pattern, err)
		}
	}
	s := &console.Scanner{Protocol: p}
	s.Write([]byte("OSv v0.57.0\r\neth0: 10.0.2.15\r\nBooted up in 0.00 ms\r\n"))
	if s.Ready() || s.Address() != "10.0.2.15" {
		t.Errorf("before the app: ready %v, address %q", s.Ready(), s.Address())
	}
	s.Write([]byte("Cmdline: /.unikfile/ready 8080 &! /app/main 8080\r\n"))
	if s.Ready() {
		t.Error("ready before the helper said so")
	}
	s.Write([]byte("unikfile-osv: ready\r\nprogram exited with status 2\r\nPowering off.\r\n"))
	if !s.Ready() || s.Exit() == nil || *s.Exit() != 2 {
		t.Errorf("after: ready %v, exit %v", s.Ready(), s.Exit())
	}
}

func TestCHS(t *testing.T) {
	for _, tc := range []struct {
		lba  uint32
		want [3]byte
	}{
		{0, [3]byte{0, 1, 0}},
		{1, [3]byte{0, 2, 0}},
		{62, [3]byte{0, 63, 0}},
		{63, [3]byte{1, 1, 0}},
		{4096, [3]byte{65, 2, 0}},
		{255 * 63 * 300, [3]byte{0, 1 | 1<<6, 300 - 256}},
		{1 << 30, [3]byte{254, 0xff, 0xff}},
	} {
		got := chs(tc.lba)
		if [3]byte(got) != tc.want {
			t.Errorf("chs(%d) = % x, want % x", tc.lba, got, tc.want)
		}
	}
}

package includeos

import (
	"strings"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy/console"
)

// Lines as IncludeOS (the fixture's SDK) printed them on the serial
// console under QEMU, with the endings the console keeps.
const (
	bootLines = "     [ Kernel ] Running service constructors\r\n" +
		"--------------------------------------------------------------------------------\r\n" +
		"================================================================================\r\n" +
		" IncludeOS VERY_DIRTY (x86_64 / 64-bit)\r\n" +
		" +--> Running [ Tiny HTTP server ]\r\n" +
		"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\r\n"
	netLines = "       [ Inet ] Network configured (c0:01:0a:00:00:2a)\n" +
		"                IP: \t\t10.0.2.15\n" +
		"                Netmask: \t255.255.255.0\n"
)

func scan(text string) *console.Scanner {
	s := &console.Scanner{Protocol: Console()}
	s.Write([]byte(text))
	s.Flush()
	return s
}

func TestConsole(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		started bool
		exit    int // -1: none
		addr    string
	}{
		{"booting", "     [ Kernel ] Running service constructors\n", false, -1, ""},
		{"started", bootLines, true, -1, ""},
		{"serving", bootLines + netLines + "httpd: listening on 10.0.2.15:80\n", true, -1, "10.0.2.15"},
		{"shutdown", bootLines + "Service done. Shutting down...\n     [ Kernel ] Stopping service\n     [ Kernel ] Powering off\n", true, 0, ""},
		{"exit", bootLines + "argc=1\n     [ Kernel ] Service exiting with status 3\n", true, 3, ""},
		{"exit 300", bootLines + "     [ Kernel ] Service exiting with status 300\n", true, 300 & 0xff, ""},
		{"thread exit", bootLines + "Service exited with status 7\n", true, 7, ""},
		{"panic", bootLines + "\n\x15\x07\t**** PANIC ****\nCPU: 0, Reason: Abort called\n", true, StatusCrashed, ""},
		// A main that returns leaves the event loop running.
		{"main returned", bootLines + "         [ main ] returned with status 200\n", true, -1, ""},
		// The app's own output cannot fake the kernel's lines.
		{"echo", bootLines + "log: [ Kernel ] Powering off\n", true, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scan(tc.text)
			if s.Ready() != tc.started {
				t.Errorf("started %v, want %v", s.Ready(), tc.started)
			}
			got := -1
			if e := s.Exit(); e != nil {
				got = *e
			}
			if got != tc.exit {
				t.Errorf("exit %d, want %d", got, tc.exit)
			}
			if s.Address() != tc.addr {
				t.Errorf("address %q, want %q", s.Address(), tc.addr)
			}
		})
	}
}

// The exit status of the last boot in a console file that holds several.
func TestConsoleLastExit(t *testing.T) {
	text := bootLines + "     [ Kernel ] Service exiting with status 4\n" + strings.Repeat("x\n", 10) + bootLines + "     [ Kernel ] Powering off\n"
	if e := console.LastExitWith([]byte(text), Console()); e == nil || *e != 0 {
		t.Fatalf("last exit %v, want 0", e)
	}
}

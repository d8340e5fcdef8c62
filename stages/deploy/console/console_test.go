package console

import (
	"bytes"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/guest"
	pack "github.com/unikfile/unikfile/stages/package"
)

func TestScannerMarkersAtLineStartOnly(t *testing.T) {
	var out bytes.Buffer
	var errs []string
	s := &Scanner{Out: &out, OnError: func(l string) { errs = append(errs, l) }}
	s.Write([]byte("echo " + guest.ReadyMarker + "\n" + guest.ExitMarker[:5]))
	if s.Ready() || s.Exit() != nil {
		t.Fatal("a marker in the middle of a line, or half a line, counted")
	}
	s.Write([]byte(guest.ExitMarker[5:] + "oops\r\n" + guest.AddressMarker + "10.0.2.15/24 via dhcp\r\n"))
	s.Write([]byte(guest.ReadyMarker + "\r\n" + guest.ErrorPrefix + "network: no NIC\n" + guest.ExitMarker + "3\n" + guest.ExitMarker + "4\n"))
	if !s.Ready() {
		t.Error("ready marker not seen")
	}
	if s.Exit() == nil || *s.Exit() != 3 {
		t.Errorf("exit = %v, want the first status printed, 3", s.Exit())
	}
	if s.Address() != "10.0.2.15" {
		t.Errorf("address = %q", s.Address())
	}
	if len(errs) != 1 || errs[0] != "error: network: no NIC" {
		t.Errorf("error lines = %q", errs)
	}
	if strings.Contains(out.String(), "\r") || !strings.HasPrefix(out.String(), "echo ") {
		t.Errorf("copied lines = %q", out.String())
	}
	s.Write([]byte("unfinished"))
	s.Flush()
	if !strings.HasSuffix(s.Tail(), "unfinished") {
		t.Errorf("tail = %q; the unterminated last line is kept on Flush", s.Tail())
	}
}

func TestScannerPowerButton(t *testing.T) {
	s := &Scanner{}
	s.Write([]byte("echo " + guest.PowerButtonMarker + "\n" + guest.PowerButtonMarker[:4]))
	if s.PowerButton() {
		t.Fatal("the power-button marker counted in the middle of a line, or half of it")
	}
	s.Write([]byte("\n" + guest.PowerButtonMarker + "\r\n"))
	if !s.PowerButton() {
		t.Error("the power-button marker at a line's start was not seen")
	}
}

func TestTailKeepsTheLastLines(t *testing.T) {
	s := &Scanner{}
	if s.Tail() != "(the console is empty)" {
		t.Errorf("empty tail = %q", s.Tail())
	}
	for i := 0; i < 3*TailLines; i++ {
		s.Write([]byte("line\n"))
	}
	if n := strings.Count(s.Tail(), "line"); n != TailLines {
		t.Errorf("tail has %d lines, want %d", n, TailLines)
	}
}

func TestLastExit(t *testing.T) {
	if LastExit([]byte("booting\n")) != nil {
		t.Error("exit found in a console without one")
	}
	if st := LastExit([]byte(guest.ExitMarker + "1\nx\n" + guest.ExitMarker + "-2\r\n")); st == nil || *st != -2 {
		t.Errorf("LastExit = %v, want -2", st)
	}
}

func TestScannerKeepsTheInitsErrors(t *testing.T) {
	s := &Scanner{}
	s.Write([]byte("app output\n" + guest.ErrorPrefix + "the app listens on 9090; the Unikfile declares 8080\r\n"))
	for i := 0; i < 2*maxErrors; i++ {
		s.Write([]byte(guest.ErrorPrefix + "again\n"))
	}
	if got := s.Errors(); len(got) != maxErrors || got[0] != "again" {
		t.Errorf("errors = %q, want the last %d", got, maxErrors)
	}
	s = &Scanner{}
	s.Write([]byte(guest.ErrorPrefix + "the app listens on 9090; the Unikfile declares 8080\r\n"))
	if got := s.Errors(); len(got) != 1 || got[0] != "the app listens on 9090; the Unikfile declares 8080" {
		t.Errorf("errors = %q", got)
	}
}

// A guest with its own protocol: ready at its start line, exit statuses
// from its lines (the first one of a boot counts), and no init markers.
func TestProtocol(t *testing.T) {
	p := &pack.ConsoleProtocol{
		Boot:  "OSv v",
		Ready: "ready: ",
		Exits: []pack.ExitLine{
			{Pattern: `program exited with status (-?\d+)`},
			{Pattern: `Powering off\.`, Status: 0},
			{Pattern: `\[backtrace\]`, Status: 134},
		},
		Address: `eth0: (\d+\.\d+\.\d+\.\d+)`,
	}
	s := &Scanner{Protocol: p}
	s.Write([]byte("OSv v1\r\n" + guest.ReadyMarker + "\r\neth0: 10.0.2.15\r\n"))
	if s.Ready() || s.Address() != "10.0.2.15" {
		t.Errorf("init marker taken, or no address: ready %v, address %q", s.Ready(), s.Address())
	}
	s.Write([]byte("ready: 8080\r\nprogram exited with status 259\r\nPowering off.\r\n"))
	if !s.Ready() || s.Exit() == nil || *s.Exit() != 3 {
		t.Errorf("ready %v, exit %v; want ready and 3 (259 mod 256)", s.Ready(), s.Exit())
	}
	for text, want := range map[string]int{
		"OSv v1\nprogram exited with status 2\nPowering off.\nOSv v1\nready: x\n[backtrace]\n": 134,
		"OSv v1\nhello\nPowering off.\n": 0,
	} {
		if got := LastExitWith([]byte(text), p); got == nil || *got != want {
			t.Errorf("LastExitWith(%q) = %v, want %d", text, got, want)
		}
	}
	if got := LastExitWith([]byte("OSv v1\nprogram exited with status 2\nOSv v1\nserving\n"), p); got != nil {
		t.Errorf("a running guest has exit %d", *got)
	}
	// A guest that is the app (no boot line): any line of the console
	// gives the status, not only the last; with no ready line it has none
	// to wait for.
	q := &pack.ConsoleProtocol{Accepts: true, Exits: []pack.ExitLine{{Pattern: `Solo5: solo5_exit\((-?\d+)\) called`}}}
	if s := (&Scanner{Protocol: q}); !s.Ready() {
		t.Error("a protocol without a ready line waits for one")
	}
	if got := LastExitWith([]byte("Solo5: banner\nhello\nSolo5: solo5_exit(3) called\n"), q); got == nil || *got != 3 {
		t.Errorf("no started line: exit %v, want 3", got)
	}
}

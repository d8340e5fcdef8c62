package console

import (
	"bytes"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/guest"
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

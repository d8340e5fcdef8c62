package rump

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/stages/deploy/console"
)

// The console of a real boot (the fixture's, recorded by its builder):
// the first line is the boot line, the app is ready at the line calling
// main, and nothing in a running guest reads as an exit.
func TestConsoleOfARealBoot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.Fixture(t, "rumprun"), "app", "serial-boot.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := Console()
	s := &console.Scanner{Protocol: p}
	s.Write(b)
	s.Flush()
	if !s.Ready() || s.Exit() != nil {
		t.Errorf("ready %v, exit %v; want ready and running", s.Ready(), s.Exit())
	}
	if got := console.LastExitWith(b, p); got != nil {
		t.Errorf("a running guest has exit %d", *got)
	}
}

// Readiness waits for main; each way Rumprun tells of an end gives its
// status; only the last boot of a console file counts.
func TestConsoleProtocol(t *testing.T) {
	s := &console.Scanner{Protocol: Console()}
	s.Write([]byte(BootMarker + "\r\n\r\nNetBSD 7.99.34 (RUMP-ROAST)\r\nmounted tmpfs on /tmp\r\n"))
	if s.Ready() {
		t.Fatal("ready before main was called")
	}
	s.Write([]byte("=== calling \"api\" main() ===\r\n"))
	if !s.Ready() || s.Exit() != nil {
		t.Fatalf("ready %v, exit %v after the calling line", s.Ready(), s.Exit())
	}
	for text, want := range map[string]int{
		"=== main() of \"api\" returned 4 ===\n=== _exit(4) called ===\n": 4,
		"=== ERROR: _exit(3) called ===\n":                                3,
		"rumprun_config: no such key\n=== bootstrap failed\n":             StatusBootFailed,
		"PANIC: trap type 6\n":                                            StatusCrashed,
		"=== _exit(259) called ===\n":                                     3,
	} {
		got := console.LastExitWith([]byte(BootMarker+"\n=== calling \"api\" main() ===\n"+text), Console())
		if got == nil || *got != want {
			t.Errorf("LastExitWith(...%q) = %v, want %d", text, got, want)
		}
	}
	again := BootMarker + "\n=== calling \"api\" main() ===\n=== _exit(2) called ===\n" + BootMarker + "\n=== calling \"api\" main() ===\nserving\n"
	if got := console.LastExitWith([]byte(again), Console()); got != nil {
		t.Errorf("the exit of an earlier boot counts for the running one: %d", *got)
	}
}

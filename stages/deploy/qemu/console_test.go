package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/guest"
)

func TestConsoleExitReadsMarkersAtLineStartOnly(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "console.log")
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app: GET /?q=" + guest.ExitMarker + "0\n")
	if st := consoleExit(p, nil); st != nil {
		t.Fatalf("a marker inside the app's output was taken for the exit: %d", *st)
	}
	// A huge console (a progress bar with no newline, then lots of lines)
	// still yields the status printed at its end.
	big := strings.Repeat("x", 3<<20) + "\n" + strings.Repeat("line\n", 100000)
	write(big + guest.ExitMarker + "3\r\nreboot: Power down\n")
	if st := consoleExit(p, nil); st == nil || *st != 3 {
		t.Fatalf("exit status from the end of a large console: %v", st)
	}
	if consoleExit(filepath.Join(dir, "missing"), nil) != nil {
		t.Fatal("a missing console has no exit status")
	}
}

func TestConsoleFollowerReadyAtLineStartOnly(t *testing.T) {
	c := &consoleFollower{}
	c.Write([]byte("echo " + guest.ReadyMarker + "\n"))
	if c.Ready() {
		t.Fatal("a ready marker inside a line counted")
	}
	c.Write([]byte(guest.ReadyMarker + "\r\n"))
	if !c.Ready() {
		t.Fatal("the ready marker was missed")
	}
}

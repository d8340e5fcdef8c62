package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

// Two `unikfile watch` of one target started at the same instant: exactly
// one serves it, the other exits 1 at once naming the winner's PID (it
// never gets as far as the host port), and the winner serves the port.
func TestTwoWatchesStartedAtOnceOneWins(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("one watch"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var cmds [2]*exec.Cmd
	var errs [2]*testenv.SyncBuffer
	for i := range cmds {
		cmds[i] = p.command(ctx, "watch")
		errs[i] = &testenv.SyncBuffer{}
		cmds[i].Stderr = errs[i]
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan int, 2)
	for i, c := range cmds {
		go func() { c.Wait(); done <- i }()
	}
	defer func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				c.Process.Signal(syscall.SIGTERM)
			}
		}
	}()
	var loser int
	select {
	case loser = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("neither watch gave way:\n--- first:\n%s\n--- second:\n%s", errs[0], errs[1])
	}
	winner := 1 - loser
	want := fmt.Sprintf("target dev is already watched by another `unikfile watch` (pid %d)", cmds[winner].Process.Pid)
	if code := cmds[loser].ProcessState.ExitCode(); code != 1 || !strings.Contains(errs[loser].String(), want) {
		t.Fatalf("the losing watch: exit %d, want 1 and %q:\n%s", code, want, errs[loser])
	}
	if strings.Contains(errs[loser].String(), "in use") {
		t.Errorf("the losing watch got as far as the port:\n%s", errs[loser])
	}
	deadline := time.Now().Add(8 * time.Minute)
	for !strings.Contains(errs[winner].String(), "a: swapped") {
		if cmds[winner].ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("the winning watch did not serve:\n%s", errs[winner])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := fetch(port); err != nil || got != "one watch" {
		t.Fatalf("the winner's port: %q, %v", got, err)
	}
	cmds[winner].Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the winning watch did not end after SIGTERM:\n%s", errs[winner])
	}
	if code := cmds[winner].ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the winning watch exited %d after SIGTERM:\n%s", code, errs[winner])
	}
	if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
		t.Fatalf("QEMU left after the watch: %v", pids)
	}
}

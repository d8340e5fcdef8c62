package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/unikfile/unikfile/state"
)

// WatcherAlive reports whether inst was booted by a `unikfile watch` that
// still runs (its process exists and its command line is a watch), and
// that process is not this one.
func WatcherAlive(inst *state.Instance) bool {
	pid := inst.WatchPID
	if pid <= 0 || pid == os.Getpid() {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	cl, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cl, "\x00"), []byte{0})
	for _, a := range args[1:] {
		if string(a) == "watch" || string(a) == "--watch" {
			return true
		}
	}
	return false
}

// WatchedError says that a target's instances belong to a running `unikfile
// watch`, which owns their host ports.
type WatchedError struct {
	Target   string
	WatchPID int
	// Command is what was refused: "up" or "down".
	Command string
}

func (e *WatchedError) Error() string {
	then := "then run " + e.Command + " again"
	if e.Command == "down" {
		then = "nothing is left to take down after it"
	}
	if e.WatchPID <= 0 {
		return fmt.Sprintf("target %s of this project is served by `unikfile watch`, which owns its host ports and keeps it up to date; "+
			"stop the watch (Ctrl-C in its terminal: its VMs stop with it); %s", e.Target, then)
	}
	return fmt.Sprintf("target %s of this project is served by `unikfile watch` (pid %d), which owns its host ports and keeps it up to date; "+
		"stop the watch (Ctrl-C in its terminal, or kill %d: its VMs stop with it); %s", e.Target, e.WatchPID, e.WatchPID, then)
}

// checkNotWatched returns a WatchedError when a live watch runs instances
// of the target. Instances of a watch that died are left to the reconciler,
// which replaces them like any stale instance.
//
// A watch that holds the target's claim but has not recorded a VM yet
// counts too: it is about to serve the target's ports.
func checkNotWatched(store *state.Store, project, target, command string) error {
	if pid := store.ClaimHolder(project, target); pid != 0 && pid != os.Getpid() {
		return &WatchedError{Target: target, WatchPID: pid, Command: command}
	}
	insts, err := store.List(state.Filter{Project: project, Target: target})
	if err != nil {
		return err
	}
	for _, inst := range insts {
		if inst.Alive() && WatcherAlive(inst) {
			return &WatchedError{Target: inst.Target, WatchPID: inst.WatchPID, Command: command}
		}
	}
	return nil
}

package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// A claim says that one long-running process (a `unikfile watch`) serves a
// target and owns its host ports for as long as it lives. It is an flock
// held for the process's lifetime, so taking it is atomic (of two watches
// started at the same instant exactly one gets it) and the kernel releases
// it when the holder dies, even by SIGKILL. The file holds the holder's PID
// for messages.

// ClaimPath is the claim file of a project's target in the state directory.
func (s *Store) ClaimPath(project, target string) string {
	sum := sha256.Sum256([]byte(project + "\x00" + target))
	return filepath.Join(s.dir, "locks", hex.EncodeToString(sum[:])[:16]+".claim")
}

// ClaimTarget takes the claim of a project's target without waiting. When
// another process holds it, ok is false and holder is that process's PID
// (0 if it cannot be told). release gives the claim up and may be called
// more than once.
func (s *Store) ClaimTarget(project, target string) (release func(), holder int, ok bool, err error) {
	if project == "" || target == "" {
		return nil, 0, false, errors.New("state: claim: no project or target given")
	}
	path := s.ClaimPath(project, target)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, false, fmt.Errorf("state: claim target %s of %s: %w", target, project, err)
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	// A failed try is a holder, or a ClaimHolder probe of this instant (it
	// holds the lock shared for a moment): try again until a holder has
	// written its PID.
	for i := 0; ; i++ {
		got, err := fl.TryLock()
		if err != nil {
			_ = fl.Close()
			return nil, 0, false, fmt.Errorf("state: claim target %s of %s: %w", target, project, err)
		}
		if got {
			break
		}
		if pid := readHolder(path); pid > 0 || i == 50 {
			_ = fl.Close()
			return nil, pid, false, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeHolder(path, strconv.Itoa(os.Getpid())+"\n")
	var once sync.Once
	return func() {
		once.Do(func() {
			writeHolder(path, "")
			_ = fl.Unlock()
			_ = fl.Close()
		})
	}, 0, true, nil
}

// ClaimHolder returns the PID of the process that holds the claim of a
// project's target, or 0 when nobody holds it. It never takes the claim
// for longer than the probe.
func (s *Store) ClaimHolder(project, target string) int {
	path := s.ClaimPath(project, target)
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	defer fl.Close()
	// A shared probe: it fails only while the holder's exclusive lock is
	// held, and never disturbs the holder.
	free, err := fl.TryRLock()
	if err != nil {
		return 0
	}
	if free {
		_ = fl.Unlock()
		return 0
	}
	if pid := waitHolder(path); pid > 0 {
		return pid
	}
	return -1 // held, by a process whose PID cannot be read
}

// waitHolder is readHolder for a claim known to be held: the holder writes
// its PID just after taking it, so an empty file is given a moment.
func waitHolder(path string) int {
	for i := 0; i < 50; i++ {
		if pid := readHolder(path); pid > 0 {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0
}

// readHolder reads a PID written by writeHolder; 0 when there is none or
// that process is gone.
func readHolder(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0
	}
	return pid
}

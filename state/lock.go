package state

import (
	"context"
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

// lockRetry is how often a waiting Lock tries again.
const lockRetry = 100 * time.Millisecond

// LockPath is the lock file of a project: locks/<first 16 hex digits of the
// SHA-256 of the project directory>.lock in the state directory.
func (s *Store) LockPath(project string) string {
	sum := sha256.Sum256([]byte(project))
	return filepath.Join(s.dir, "locks", hex.EncodeToString(sum[:])[:16]+".lock")
}

// Lock takes the project's lock, waiting until it is free or ctx ends. The
// lock is an flock on LockPath, so it serializes goroutines and processes
// alike and is released by the kernel if the holder dies. While held, the
// file holds the holder's PID (see LockHolder). unlock releases it and may
// be called more than once.
func (s *Store) Lock(ctx context.Context, project string) (unlock func(), err error) {
	fl, err := s.newFlock(project)
	if err != nil {
		return nil, err
	}
	ok, err := fl.TryLockContext(ctx, lockRetry)
	if err != nil || !ok {
		_ = fl.Close()
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("state: lock project %s: %w", project, err)
	}
	return s.locked(fl), nil
}

// TryLock takes the project's lock if it is free. ok is false when another
// holder has it; LockHolder then tells who.
func (s *Store) TryLock(project string) (unlock func(), ok bool, err error) {
	fl, err := s.newFlock(project)
	if err != nil {
		return nil, false, err
	}
	ok, err = fl.TryLock()
	if err != nil {
		_ = fl.Close()
		return nil, false, fmt.Errorf("state: lock project %s: %w", project, err)
	}
	if !ok {
		_ = fl.Close()
		return nil, false, nil
	}
	return s.locked(fl), true, nil
}

// LockHolder returns the PID of the process that holds the project's lock,
// or 0 when it is free or the holder is unknown. A process may hold the
// lock from several goroutines in turn, so the PID can be the caller's own.
func (s *Store) LockHolder(project string) int {
	data, err := os.ReadFile(s.LockPath(project))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0 // the holder died; its lock died with it
	}
	return pid
}

func (s *Store) newFlock(project string) (*flock.Flock, error) {
	if project == "" {
		return nil, errors.New("state: lock: no project given")
	}
	path := s.LockPath(project)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state: lock project %s: %w", project, err)
	}
	return flock.New(path, flock.SetPermissions(0o600)), nil
}

// locked records this process as the holder and returns the unlock function.
func (s *Store) locked(fl *flock.Flock) func() {
	writeHolder(fl.Path(), strconv.Itoa(os.Getpid())+"\n")
	var once sync.Once
	return func() {
		once.Do(func() {
			writeHolder(fl.Path(), "")
			_ = fl.Unlock()
			_ = fl.Close()
		})
	}
}

// writeHolder replaces the lock file's content. It is informative only (the
// flock is what excludes), so errors are ignored.
func writeHolder(path, content string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(content)
	_ = f.Close()
}

package kbuild

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLockFileWaitsAndCancels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trees", "v.lock")
	unlock, err := lockFile(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{}, 1)
	got := make(chan error, 1)
	go func() {
		u, err := lockFile(context.Background(), p, func() { waited <- struct{}{} })
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the second locker did not say it waits")
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("second lock after the first was released: %v", err)
	}
	unlock, _ = lockFile(context.Background(), p, nil)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, p, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a cancelled wait returned %v", err)
	}
}

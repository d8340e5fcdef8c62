package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newInstance(app string, created time.Time) *Instance {
	return &Instance{
		ID: NewID(app), Project: "/p", Target: "dev", App: app, Provider: "qemu",
		State: Running, Created: created, Ports: []Port{{Bind: "127.0.0.1", Host: 8080, Guest: 8080}},
		Config: []byte(`{"accel":"tcg"}`),
	}
}

func TestPutGetListDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newInstance("api", base.Add(2*time.Second))
	b := newInstance("web", base.Add(1*time.Second))
	c := newInstance("api", base)
	c.Target = "prod"
	for _, i := range []*Instance{a, b, c} {
		if err := s.Put(i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.App != "api" || got.Ports[0].Host != 8080 || string(got.Config) != `{"accel":"tcg"}` || !got.Created.Equal(a.Created) {
		t.Errorf("Get = %+v", got)
	}
	all, err := s.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].ID != c.ID || all[1].ID != b.ID || all[2].ID != a.ID {
		t.Errorf("List not sorted by Created: %v", ids(all))
	}
	dev, _ := s.List(Filter{Project: "/p", Target: "dev", App: "api"})
	if len(dev) != 1 || dev[0].ID != a.ID {
		t.Errorf("filtered List = %v", ids(dev))
	}
	if err := s.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(a.ID); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Get(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	status := 3
	if err := s.Update(b.ID, func(i *Instance) error { i.State = Exited; i.ExitStatus = &status; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(b.ID); got.State != Exited || got.ExitStatus == nil || *got.ExitStatus != 3 {
		t.Errorf("after Update: %+v", got)
	}
	if err := s.Update("nope", func(*Instance) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update unknown: %v", err)
	}
}

func ids(l []*Instance) []string {
	var out []string
	for _, i := range l {
		out = append(out, i.ID)
	}
	return out
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID("hello")
		if len(id) != len("hello-")+10 || id[:6] != "hello-" || seen[id] {
			t.Fatalf("bad or repeated ID %q", id)
		}
		seen[id] = true
	}
}

// Two Store values on one directory stand for two unikfile processes: they
// share nothing but the file and its locks.
func TestConcurrentPutList(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*each)
	for w := range writers {
		s := s1
		if w%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			for n := range each {
				inst := newInstance(fmt.Sprintf("app%d", w), time.Now())
				if err := s.Put(inst); err != nil {
					errs <- err
					return
				}
				if _, err := s.List(Filter{App: inst.App}); err != nil {
					errs <- err
				}
				if n%3 == 0 {
					if err := s.Update(inst.ID, func(i *Instance) error { i.State = Stopped; return nil }); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := s2.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Errorf("got %d instances, want %d", len(all), writers*each)
	}
}

// What was committed survives closing and reopening: every operation closes
// the database, and a new Store reads the file from scratch.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	inst := newInstance("api", time.Now())
	if err := s.Put(inst); err != nil {
		t.Fatal(err)
	}
	s = nil
	again, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := again.Get(inst.ID)
	if err != nil || got.ID != inst.ID {
		t.Fatalf("after reopen: %v %+v", err, got)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Error(err)
	}
}

// A database removed behind the store's back reads as empty, not as an error.
func TestMissingDatabaseReadsEmpty(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(Filter{})
	if err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v", l, err)
	}
	if _, err := s.Get("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get = %v", err)
	}
}

func TestLockSerializes(t *testing.T) {
	dir := t.TempDir()
	s1, _ := Open(dir)
	s2, _ := Open(dir)
	ctx := context.Background()
	var inside, maxInside, entered atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []*Store{s1, s2, s1, s2} {
		wg.Go(func() {
			unlock, err := s.Lock(ctx, "/project")
			if err != nil {
				t.Error(err)
				return
			}
			defer unlock()
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			if pid := s.LockHolder("/project"); pid != os.Getpid() {
				t.Errorf("LockHolder = %d, want %d", pid, os.Getpid())
			}
			time.Sleep(50 * time.Millisecond)
			inside.Add(-1)
			entered.Add(1)
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 || entered.Load() != 4 {
		t.Errorf("max holders at once = %d, entered = %d", maxInside.Load(), entered.Load())
	}
	if pid := s1.LockHolder("/project"); pid != 0 {
		t.Errorf("LockHolder after unlock = %d", pid)
	}
}

func TestLockWaitsWithContextAndTryLock(t *testing.T) {
	s, _ := Open(t.TempDir())
	unlock, err := s.Lock(context.Background(), "/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TryLock("/a"); ok || err != nil {
		t.Errorf("TryLock on a held lock = %v, %v", ok, err)
	}
	// Another project's lock is independent.
	other, ok, err := s.TryLock("/b")
	if !ok || err != nil {
		t.Fatalf("TryLock /b = %v, %v", ok, err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(ctx, "/a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held = %v, want deadline exceeded", err)
	}
	unlock()
	unlock() // idempotent
	again, ok, err := s.TryLock("/a")
	if !ok || err != nil {
		t.Fatalf("TryLock after unlock = %v, %v", ok, err)
	}
	again()
	if s.LockPath("/a") == s.LockPath("/b") {
		t.Error("two projects share a lock file")
	}
}

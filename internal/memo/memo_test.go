package memo

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDoOncePerKeyAndRetriesFailures(t *testing.T) {
	var g Group[int]
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			v, err := g.Do("k", func() (int, error) { calls.Add(1); return 7, nil })
			if v != 7 || err != nil {
				t.Errorf("Do = %d, %v", v, err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("f ran %d times for one key", calls.Load())
	}
	fail := errors.New("cancelled")
	if _, err := g.Do("x", func() (int, error) { return 0, fail }); err != fail {
		t.Fatalf("err = %v", err)
	}
	if v, err := g.Do("x", func() (int, error) { return 3, nil }); v != 3 || err != nil {
		t.Errorf("after a failure: %d, %v; want a new try", v, err)
	}
}

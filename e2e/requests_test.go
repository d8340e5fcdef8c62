package e2e

import (
	"sync"
	"testing"
	"time"
)

// requests asks the app on a port 20 times a second, as a user's client
// would during reloads, until stop.
type requests struct {
	port int
	stop chan struct{}
	wg   sync.WaitGroup

	mu         sync.Mutex
	ok, failed int
	errs       []string
	last       string
}

func startRequests(port int) *requests {
	r := &requests{port: port, stop: make(chan struct{})}
	r.wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			got, err := fetch(port)
			r.mu.Lock()
			if err != nil {
				r.failed++
				r.errs = append(r.errs, err.Error())
			} else {
				r.ok++
				r.last = got
			}
			r.mu.Unlock()
		}
	})
	return r
}

// stopAndCheck ends the requests half a second after the last swap and
// fails the test unless every one was answered and the last answer was
// want.
func (r *requests) stopAndCheck(t *testing.T, reloads int, want string) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	close(r.stop)
	r.wg.Wait()
	if r.failed != 0 {
		t.Fatalf("%d of %d requests failed during %d reloads: %v", r.failed, r.failed+r.ok, reloads, r.errs)
	}
	if r.last != want {
		t.Fatalf("the request loop last saw %q, want %s", r.last, want)
	}
	t.Logf("%d requests, none failed", r.ok)
}

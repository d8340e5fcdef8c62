package gcefake

import (
	compute "google.golang.org/api/compute/v1"
)

// Fault makes calls of one API method fail.
type Fault struct {
	// Method is the API method, as in Calls (compute.images.insert).
	Method string
	// Call is which call of Method fails, counted from when the fault is
	// injected (1: the next one); 0 means every call.
	Call int
	// Status is the HTTP status of the failed answer; default 500.
	Status int
	// Apply makes the call take effect before it fails, as when its
	// answer is lost on the way.
	Apply bool
	// Operation makes the call succeed and its operation end DONE with
	// these errors, as GCE reports failures found after the call.
	Operation *compute.OperationError
	// Before, if set, runs before the call is served (and instead of
	// failing it when Status, Apply and Operation are unset), as something
	// else happening at that moment.
	Before func()

	base int
}

func (f *Fault) status() int {
	if f.Status == 0 {
		return 500
	}
	return f.Status
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.base = s.counts[f.Method]
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// fault is the fault for call n of method, if any.
func (s *Server) fault(method string, n int) *Fault {
	for _, f := range s.faults {
		if f.Method == method && (f.Call == 0 || n-f.base == f.Call) {
			return f
		}
	}
	return nil
}

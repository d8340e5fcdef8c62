package gcefake

import (
	"fmt"
	"slices"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// operation is one long-running operation: PENDING for a Step, RUNNING
// for another, then DONE, when its effect takes place (or its failure is
// reported, inside the DONE operation, as GCE does).
type operation struct {
	op      *compute.Operation
	seq     int
	created time.Time
	step    time.Duration
	// apply is the effect at DONE; it returns errors to report in the
	// operation (an archive that cannot be imported).
	apply func() *compute.OperationError
	// rollback undoes what the call did at once (a resource created in a
	// pending state) when the operation fails.
	rollback func()
	fail     *compute.OperationError
	done     bool
}

func (o *operation) status(now time.Time) string {
	switch d := now.Sub(o.created); {
	case o.done || d >= 2*o.step:
		return "DONE"
	case d >= o.step:
		return "RUNNING"
	}
	return "PENDING"
}

// untilNext is how long until the operation's status changes.
func (o *operation) untilNext(now time.Time) time.Duration {
	d := now.Sub(o.created)
	switch {
	case d < o.step:
		return o.step - d
	case d < 2*o.step:
		return 2*o.step - d
	}
	return 0
}

// view is the operation as the API shows it.
func (o *operation) view(now time.Time) *compute.Operation {
	c := *o.op
	c.Status = o.status(now)
	switch c.Status {
	case "PENDING":
		c.Progress = 0
	case "RUNNING":
		c.Progress = 50
		c.StartTime = o.created.Add(o.step).Format(time.RFC3339Nano)
	case "DONE":
		c.Progress = 100
		c.StartTime = o.created.Add(o.step).Format(time.RFC3339Nano)
		if c.EndTime == "" {
			c.EndTime = o.created.Add(2 * o.step).Format(time.RFC3339Nano)
		}
	}
	return &c
}

// newOperation starts an operation on target; zone is "" for a global one.
func (s *Server) newOperation(r *request, project, zone, kind, target string, apply func() *compute.OperationError, rollback func()) *compute.Operation {
	id := s.nextID()
	name := fmt.Sprintf("operation-%d-%x", s.now().UnixMilli(), id)
	path := "projects/" + project + "/global/operations/" + name
	if zone != "" {
		path = "projects/" + project + "/zones/" + zone + "/operations/" + name
	}
	o := &compute.Operation{
		Kind: "compute#operation", Id: id, Name: name, OperationType: kind,
		TargetLink: s.selfLink(target), TargetId: id, User: "unikfile-test@" + project + ".iam.gserviceaccount.com",
		InsertTime: s.timestamp(), SelfLink: s.selfLink(path),
	}
	if zone != "" {
		o.Zone = s.selfLink("projects/" + project + "/zones/" + zone)
	}
	if rid := r.URL.Query().Get("requestId"); rid != "" {
		o.ClientOperationId = rid
		s.requests[rid] = name
	}
	s.seq++
	s.operations[name] = &operation{op: o, seq: s.seq, created: s.now(), step: s.o.Step, apply: apply, rollback: rollback}
	return s.operations[name].view(s.now())
}

// tick completes the operations whose time has come, oldest first.
func (s *Server) tick() {
	now := s.now()
	var due []*operation
	for _, o := range s.operations {
		if !o.done && o.status(now) == "DONE" {
			due = append(due, o)
		}
	}
	slices.SortFunc(due, func(a, b *operation) int { return a.seq - b.seq })
	for _, o := range due {
		o.done = true
		o.op.EndTime = now.Format(time.RFC3339Nano)
		errs := o.fail
		if errs == nil && o.apply != nil {
			errs = o.apply()
		}
		if errs != nil {
			o.op.Error = errs
			o.op.HttpErrorStatusCode = 400
			o.op.HttpErrorMessage = "BAD REQUEST"
			if o.rollback != nil {
				o.rollback()
			}
		}
	}
}

// OpError is an operation error of one entry, for Fault.Operation.
func OpError(code, message string) *compute.OperationError {
	return &compute.OperationError{Errors: []*compute.OperationErrorErrors{{Code: code, Message: message}}}
}

func init() {
	getOp := func(zonal bool) func(s *Server, r *request) (any, *apiError) {
		return func(s *Server, r *request) (any, *apiError) {
			perm := "compute.globalOperations.get"
			path := "projects/" + r.v("project") + "/global/operations/" + r.v("operation")
			if zonal {
				perm = "compute.zoneOperations.get"
				path = "projects/" + r.v("project") + "/zones/" + r.v("zone") + "/operations/" + r.v("operation")
			}
			if e := s.permission(perm, path); e != nil {
				return nil, e
			}
			o := s.operations[r.v("operation")]
			if o == nil || resourcePath(o.op.SelfLink) != path {
				return nil, notFound(path)
			}
			return o.view(s.now()), nil
		}
	}
	handle("compute.globalOperations.get", "GET", "projects/{project}/global/operations/{operation}", getOp(false))
	handle("compute.globalOperations.wait", "POST", "projects/{project}/global/operations/{operation}/wait", getOp(false))
	handle("compute.zoneOperations.get", "GET", "projects/{project}/zones/{zone}/operations/{operation}", getOp(true))
	handle("compute.zoneOperations.wait", "POST", "projects/{project}/zones/{zone}/operations/{operation}/wait", getOp(true))
}

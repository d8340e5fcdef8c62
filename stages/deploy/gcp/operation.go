package gcp

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// OperationError is an operation that ended (DONE) with errors, as GCE
// reports the failures of work done after the call returned: a quota, a
// zone out of resources, an image archive it could not read.
type OperationError struct {
	What      string // what the operation was for
	Operation string // its name
	Errors    []*compute.OperationErrorErrors
	// HTTPStatus is the status the call would have had (403, 400, ...).
	HTTPStatus int64
}

func (e *OperationError) Error() string {
	var parts []string
	for _, x := range e.Errors {
		s := x.Code + ": " + x.Message
		if x.Location != "" {
			s += " (at " + x.Location + ")"
		}
		parts = append(parts, s)
	}
	msg := fmt.Sprintf("%s failed (operation %s): %s", e.What, e.Operation, strings.Join(parts, "; "))
	if hint := e.hint(); hint != "" {
		msg += "; " + hint
	}
	return msg
}

// hint is what to do about the errors GCE commonly reports.
func (e *OperationError) hint() string {
	for _, x := range e.Errors {
		switch {
		case x.Code == "QUOTA_EXCEEDED":
			return "ask for more quota (IAM & Admin → Quotas), or use a smaller machine_type or another region"
		case x.Code == "ZONE_RESOURCE_POOL_EXHAUSTED" || x.Code == "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS":
			return "the zone has no capacity for this machine type now: try another zone or machine_type"
		case strings.Contains(x.Message, "permission"):
			if m := requiredRe.FindStringSubmatch(x.Message); m != nil {
				if r := roleFor(m[1]); r != "" {
					return "grant the account unikfile runs as " + r
				}
			}
		}
	}
	return ""
}

// waitGlobal waits until the global operation o is DONE and returns its
// error, if any.
func (p *Provider) waitGlobal(ctx context.Context, svc *compute.Service, project string, o *compute.Operation, what string) error {
	return p.wait(ctx, o, what, func() (*compute.Operation, error) {
		return svc.GlobalOperations.Wait(project, o.Name).Context(ctx).Do()
	})
}

// waitZone waits until the zonal operation o is DONE and returns its
// error, if any.
func (p *Provider) waitZone(ctx context.Context, svc *compute.Service, project, zone string, o *compute.Operation, what string) error {
	return p.wait(ctx, o, what, func() (*compute.Operation, error) {
		return svc.ZoneOperations.Wait(project, zone, o.Name).Context(ctx).Do()
	})
}

// wait polls with GCE's operations.wait, which returns when the operation
// is DONE or after a while (then it is asked again).
func (p *Provider) wait(ctx context.Context, o *compute.Operation, what string, poll func() (*compute.Operation, error)) error {
	for o.Status != "DONE" {
		var next *compute.Operation
		err := retry(ctx, p.backoff(), func() (err error) {
			next, err = poll()
			return err
		})
		if err != nil {
			return apiError(op{what: "wait for " + what, perm: "compute.globalOperations.get"}, err)
		}
		o = next
	}
	if o.Error != nil && len(o.Error.Errors) > 0 {
		return &OperationError{What: what, Operation: o.Name, Errors: o.Error.Errors, HTTPStatus: o.HttpErrorStatusCode}
	}
	return nil
}

// requestID is a fresh request ID (a random UUID) for one mutating call:
// the call's retries send the same one, so that a call GCE applied before
// its answer was lost is not applied twice; the next call gets another.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

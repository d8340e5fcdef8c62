package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/auth"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
)

// op describes one API call for its error: what it does, the resource, and
// the IAM permission it needs.
type op struct {
	what     string // "create image unikfile-0a1b..."
	perm     string // "compute.images.create"
	resource string // "projects/p/global/images/unikfile-0a1b..."
}

// roles are the predefined roles that grant a permission, by its prefix.
var roles = []struct{ prefix, role string }{
	{"compute.images.useReadOnly", "roles/compute.instanceAdmin.v1"},
	{"compute.images.", "roles/compute.storageAdmin"},
	{"compute.firewalls.", "roles/compute.securityAdmin"},
	{"compute.networks.updatePolicy", "roles/compute.securityAdmin"},
	{"compute.globalOperations.", "roles/compute.viewer"},
	{"compute.", "roles/compute.instanceAdmin.v1"},
	{"storage.buckets.", "roles/storage.admin"},
	{"storage.objects.", "roles/storage.objectAdmin"},
}

func roleFor(perm string) string {
	for _, r := range roles {
		if strings.HasPrefix(perm, r.prefix) {
			return r.role
		}
	}
	return ""
}

// requiredRe finds the permission in GCE's 403 messages ("Required
// 'compute.instances.create' permission for 'projects/...'").
var requiredRe = regexp.MustCompile(`Required '([a-zA-Z0-9.]+)' permission`)

// apiError explains err from call o: a missing permission with the role
// that grants it, refused credentials, a quota, or the API's own message.
func apiError(o op, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", o.what, err)
	}
	var ae *auth.Error
	var re *oauth2.RetrieveError
	if errors.As(err, &ae) || errors.As(err, &re) {
		return fmt.Errorf("%s: getting an access token failed: %w; %s", o.what, err, adcHint)
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		if strings.Contains(err.Error(), "credentials") {
			return fmt.Errorf("%s: %w; %s", o.what, err, adcHint)
		}
		return fmt.Errorf("%s: %w", o.what, err)
	}
	msg := ge.Message
	if msg == "" {
		msg = strings.TrimSpace(ge.Body)
	}
	reason := ""
	if len(ge.Errors) > 0 {
		reason = ge.Errors[0].Reason
	}
	switch {
	case ge.Code == http.StatusUnauthorized:
		return fmt.Errorf("%s: the credentials were refused (HTTP 401: %s); %s", o.what, msg, adcHint)
	case ge.Code == http.StatusForbidden && strings.Contains(strings.ToLower(reason), "quota"), ge.Code == http.StatusTooManyRequests:
		return fmt.Errorf("%s: quota exceeded (HTTP %d: %s); wait and try again, or ask for more quota (IAM & Admin → Quotas)", o.what, ge.Code, msg)
	case ge.Code == http.StatusForbidden:
		perm := o.perm
		if m := requiredRe.FindStringSubmatch(msg); m != nil {
			perm = m[1]
		}
		hint := "grant the account unikfile runs as a role that has it"
		if r := roleFor(perm); r != "" {
			hint += ", such as " + r
		}
		res := o.resource
		if res == "" {
			res = "the project"
		}
		return fmt.Errorf("%s: permission %s is missing on %s (HTTP 403: %s); %s (see the README's GCP section for every role unikfile needs)",
			o.what, perm, res, msg, hint)
	}
	return fmt.Errorf("%s: %w", o.what, ge)
}

// isNotFound says err is the API's 404.
func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

// isConflict says err is the API's 409 (the resource already exists).
func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// notReady says err is GCE's answer about a resource in a state that does
// not allow the call yet (an image being imported).
func notReady(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusBadRequest && len(ge.Errors) > 0 && ge.Errors[0].Reason == "resourceNotReady"
}

// transient says a call may succeed if it is made again.
func transient(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne) && ne.Timeout()
}

// retry calls f until it succeeds, fails for good, or has failed tries
// times (transient errors, with backoff from base). Mutating calls pass a
// request ID, so a call the server applied before its answer was lost is
// not applied twice.
func retry(ctx context.Context, base time.Duration, f func() error) error {
	const tries = 5
	wait := base
	for i := 1; ; i++ {
		err := f()
		if err == nil || !transient(err) || i == tries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

package main

import (
	"errors"
	"strings"
)

// statusError carries an exit status through cobra without a message, e.g.
// the app's own exit status for `up --attach`.
type statusError struct{ code int }

func (e *statusError) Error() string { return "exit status" }

// reportedError is an error already printed (diagnostics, a build summary).
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// internalError marks a bug in unikfile.
type internalError struct{ err error }

func (e *internalError) Error() string { return "internal error: " + e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

func isInternal(err error) bool {
	var ie *internalError
	// A panic inside a graph node is reported as "internal error in <node>".
	return errors.As(err, &ie) || strings.Contains(err.Error(), "internal error in ")
}

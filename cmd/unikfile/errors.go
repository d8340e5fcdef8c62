package main

import (
	"errors"

	"github.com/unikfile/unikfile/graph"
)

// statusError carries an exit status through cobra without a message, e.g.
// the app's own exit status for `up --attach`.
type statusError struct{ code int }

func (e *statusError) Error() string { return "exit status" }

// reportedError is an error already printed (diagnostics, a build summary).
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// interruptedError is a command stopped by Ctrl-C or SIGTERM.
type interruptedError struct{ err error }

func (e *interruptedError) Error() string {
	return "interrupted; what this command had started is stopped"
}
func (e *interruptedError) Unwrap() error { return e.err }

func isInternal(err error) bool {
	var pe *graph.PanicError
	return errors.As(err, &pe)
}

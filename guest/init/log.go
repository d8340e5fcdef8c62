package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/unikfile/unikfile/guest"
)

// prefix starts every line the init prints.
const prefix = "unikfile-init: "

// logger writes the init's lines to the console. Step lines are printed only
// when verbose; errors and markers always.
type logger struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	// clock returns seconds since boot for verbose lines; nil omits it.
	clock func() float64
}

// line writes one whole line in a single write so that it is not torn by
// the app's output on the same console.
func (l *logger) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, s+"\n")
}

// stepf prints a progress line when verbose.
func (l *logger) stepf(format string, args ...any) {
	if !l.verbose {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if l.clock != nil {
		msg = fmt.Sprintf("[%.3fs] %s", l.clock(), msg)
	}
	l.line(prefix + msg)
}

// debugf prints details that matter only when something goes wrong, such as
// a cloud NIC module that finds no device; verbose only.
func (l *logger) debugf(format string, args ...any) { l.stepf(format, args...) }

// errorf prints an error line, always.
func (l *logger) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.line(guest.ErrorPrefix + strings.TrimRight(msg, "\n"))
}

// raw prints a marker line as is, always. It starts with a newline: the
// app shares the console and may have left a line unfinished, and the host
// reads markers only at the start of a line.
func (l *logger) raw(s string) { l.line("\n" + s) }

// cmdlineHas reports whether the kernel command line has the flag word
// (as a bare word or as word=value).
func cmdlineHas(cmdline, word string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == word || strings.HasPrefix(f, word+"=") {
			return true
		}
	}
	return false
}

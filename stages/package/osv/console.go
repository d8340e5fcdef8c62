package osv

import (
	"regexp"
	"strconv"
	"strings"
)

// LaunchedMarker starts the line OSv prints when it starts the app
// ("Cmdline: /app/main 8080"); OSv has no readiness signal of its own, so
// an app with ports is ready when they answer.
const LaunchedMarker = "Cmdline: "

// Exit statuses ExitStatus gives for what is not the app's own.
const (
	StatusNotStarted = 127 // OSv could not load the program
	StatusCrashed    = 134 // OSv aborted (a crash, an assertion), as SIGABRT
)

var (
	exitedRe   = regexp.MustCompile(`(?m)^program exited with status (-?\d+)\r?$`)
	returnedRe = regexp.MustCompile(`(?m)^program .* returned (-?\d+)\r?$`)
	launchRe   = regexp.MustCompile(`(?m)^.*\. Powering off\.\r?$`)
)

// ExitStatus reads how the app ended from the console of an image made by
// Build (OSv runs with --verbose): exit(N), os.Exit(N) and the like print
// "program exited with status N", a main returning N != 0 prints "program
// PATH returned N", a program OSv cannot load prints its error and "...
// Powering off." (StatusNotStarted), an abort prints a backtrace
// (StatusCrashed), and a main returning 0 prints only "Powering off.".
// ok is false while none of these has appeared.
func ExitStatus(console string) (status int, ok bool) {
	if i := strings.LastIndex(console, LaunchedMarker); i >= 0 {
		console = console[i:]
	}
	for _, re := range []*regexp.Regexp{exitedRe, returnedRe} {
		if m := re.FindStringSubmatch(console); m != nil {
			n, err := strconv.Atoi(m[1])
			if err == nil {
				return n & 0xff, true
			}
		}
	}
	switch {
	case launchRe.MatchString(console):
		return StatusNotStarted, true
	case strings.Contains(console, "[backtrace]"):
		return StatusCrashed, true
	case strings.Contains(console, "Powering off."):
		return 0, true
	}
	return 0, false
}

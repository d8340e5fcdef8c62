package osv

import pack "github.com/unikfile/unikfile/stages/package"

// LaunchedMarker starts the line OSv prints when it starts the app
// ("Cmdline: /app/main 8080"): the readiness of an app without ports.
// An app with ports is ready when the readiness helper prints ReadyMarker.
const LaunchedMarker = "Cmdline: "

// bootMarker starts the first line of every OSv boot.
const bootMarker = "OSv v"

// Exit statuses for ends that are not the app's own.
const (
	StatusNotStarted = 127 // OSv could not load the program
	StatusCrashed    = 134 // OSv aborted (a crash, an assertion), as SIGABRT would
)

// Console is how OSv (run with --verbose, see Cmdline) tells on its
// console how the app ended: exit(N), os.Exit(N) and the like print
// "program exited with status N", a main returning N != 0 prints
// "program PATH returned N", a program OSv cannot load prints its error
// and "... Powering off." (StatusNotStarted), an abort prints a backtrace
// (StatusCrashed), and a main returning 0 leaves only "Powering off.".
// OSv prints the address it configured as "eth0: ADDRESS". withPorts
// says the image carries the readiness helper.
func Console(withPorts bool) *pack.ConsoleProtocol {
	ready := LaunchedMarker
	if withPorts {
		ready = ReadyMarker
	}
	return &pack.ConsoleProtocol{
		Boot:  bootMarker,
		Ready: ready,
		Exits: []pack.ExitLine{
			{Pattern: `program exited with status (-?\d+)`},
			{Pattern: `program .* returned (-?\d+)`},
			{Pattern: `.+\. Powering off\.`, Status: StatusNotStarted},
			{Pattern: `\[backtrace\]`, Status: StatusCrashed},
			{Pattern: `Powering off\.`, Status: 0},
		},
		Address: `eth0: (\d+\.\d+\.\d+\.\d+)`,
	}
}

package osv

import pack "github.com/unikfile/unikfile/stages/package"

// LaunchedMarker starts the line OSv prints when it starts the app
// ("Cmdline: /app/main 8080"); OSv has no readiness signal of its own, so
// an app with ports is ready when the guest accepts connections on them.
const LaunchedMarker = "Cmdline: "

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
// OSv prints the address it configured as "eth0: ADDRESS".
func Console() *pack.ConsoleProtocol {
	return &pack.ConsoleProtocol{
		Started: LaunchedMarker,
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

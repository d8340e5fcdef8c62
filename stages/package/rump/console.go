package rump

import pack "github.com/unikfile/unikfile/stages/package"

// BootMarker is the first line Rumprun prints on every boot
// (the hw platform's x86_boot, before anything else).
const BootMarker = "rump kernel bare metal bootstrap"

// ReadyMarker starts the line Rumprun prints when it calls the app's main
// (lib/librumprun_base/rumprun.c: `=== calling "argv[0]" main() ===`).
// Rumprun prints nothing once the app listens: this is the last line it
// prints before the app runs, and the protocol's Accepts makes the
// provider wait, after it, for the guest to accept a connection on each
// forwarded port.
const ReadyMarker = `=== calling "`

// Exit statuses for ends that are not the app's own.
const (
	// StatusBootFailed: Rumprun stopped before main, typically on its
	// configuration (it printed why, then "=== bootstrap failed"); its
	// errx(1) is the status.
	StatusBootFailed = 1
	// StatusCrashed: the rump kernel panicked, as SIGABRT would.
	StatusCrashed = 134
)

// Console is how Rumprun tells on its console how the app ended: main
// returning N prints `=== main() of "NAME" returned N ===`, exit(N) (and
// main's return, after that line) `=== _exit(N) called ===` (with
// "ERROR: " before _exit when N is not 0), a failure before main
// "=== bootstrap failed", a panic "PANIC: ...". DHCP prints the address
// it configured. Then Rumprun halts the CPU: it does not power off.
func Console() *pack.ConsoleProtocol {
	return &pack.ConsoleProtocol{
		Boot:    BootMarker,
		Ready:   ReadyMarker,
		Accepts: true,
		Exits: []pack.ExitLine{
			{Pattern: `=== main\(\) of ".*" returned (-?\d+) ===`},
			{Pattern: `=== (?:ERROR: )?_exit\((-?\d+)\) called ===`},
			{Pattern: `=== bootstrap failed`, Status: StatusBootFailed},
			{Pattern: `PANIC: .*`, Status: StatusCrashed},
		},
		Address: `dhcp: \S+: adding IP address (\d+\.\d+\.\d+\.\d+)/\d+`,
		Halts:   true,
	}
}

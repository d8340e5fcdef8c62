package includeos

import pack "github.com/unikfile/unikfile/stages/package"

// BootMarker starts the banner IncludeOS prints once per boot, before
// the service starts: " IncludeOS VERSION (x86_64 / 64-bit)"
// (src/kernel/kernel.cpp).
const BootMarker = " IncludeOS "

// StartedMarker starts the line IncludeOS prints just before it calls the
// service's Service::start (or main): " +--> Running [ NAME ]"
// (src/kernel/kernel.cpp). IncludeOS has no readiness signal of its own
// and unikfile runs nothing beside the service, so this line is the
// image's ready line, and the protocol's Accepts makes the provider wait
// after it until the guest itself has accepted a connection on each
// forwarded port: a service that listens once DHCP has answered listens
// a moment after this line.
const StartedMarker = " +--> Running [ "

// StatusCrashed is the exit status of a service IncludeOS stopped with a
// panic (a CPU exception, a failed assertion, abort), as SIGABRT would
// give on Linux.
const StatusCrashed = 134

// Console is how IncludeOS tells on its serial console how the service
// ended: exit(N) prints "[ Kernel ] Service exiting with status N"
// (exit_group) and the thread exit "Service exited with status N", both
// before powering off; os::shutdown() and the end of the event loop print
// "[ Kernel ] Powering off" (0); a panic prints "**** PANIC ****" after two
// control characters. A main that returns does not end the service (the
// event loop goes on), so its "returned with status" is not an exit.
// Inet prints each address it configures as "IP: <tab><tab>ADDRESS".
func Console() *pack.ConsoleProtocol {
	return &pack.ConsoleProtocol{
		Boot:    BootMarker,
		Ready:   StartedMarker,
		Accepts: true,
		Exits: []pack.ExitLine{
			{Pattern: `\s*\[ Kernel \] Service exiting with status (-?\d+)`},
			{Pattern: `Service exited with status (-?\d+)`},
			{Pattern: `.*\*\*\*\* PANIC \*\*\*\*.*`, Status: StatusCrashed},
			{Pattern: `.*Double fault!.*`, Status: StatusCrashed},
			{Pattern: `\s*\[ Kernel \] Powering off`, Status: 0},
		},
		Address: `\s*IP:\s+(\d+\.\d+\.\d+\.\d+)`,
	}
}

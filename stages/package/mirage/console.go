package mirage

import pack "github.com/unikfile/unikfile/stages/package"

// StatusAbort is the exit status of a Solo5 unikernel that aborted (an
// assertion, a fatal OCaml runtime error): Solo5's SOLO5_EXIT_ABORT.
const StatusAbort = 255

// Console is how a Solo5 unikernel tells on its console how it ended:
// solo5_exit(N) prints "Solo5: solo5_exit(N) called", solo5_abort()
// "Solo5: solo5_abort() called", and Solo5's own aborts "Solo5: ABORT:
// ...". MirageOS's TCP/IP stack logs the address it configured ("stack
// assembled: mac=...,ip=10.0.2.15"). The unikernel is the app and prints
// no line once it listens, so it has no Ready line: it is ready when it
// has accepted a connection on each forwarded port (Accepts). It has no
// Boot line either: QEMU runs it with -no-reboot, so a console holds one
// boot, and with --solo5:quiet not even Solo5's banner starts it.
func Console() *pack.ConsoleProtocol {
	return &pack.ConsoleProtocol{
		Ready:   "",
		Accepts: true,
		Exits: []pack.ExitLine{
			{Pattern: `Solo5: solo5_exit\((-?\d+)\) called`},
			{Pattern: `Solo5: solo5_abort\(\) called`, Status: StatusAbort},
			{Pattern: `Solo5: ABORT: .*`, Status: StatusAbort},
		},
		Address: `.*stack assembled: mac=[0-9a-f:]+,ip=(\d+\.\d+\.\d+\.\d+).*`,
	}
}

// CPUModel is the CPU QEMU gives a Solo5 virtio unikernel (the one it was
// verified with under TCG; KVM hosts have it too).
const CPUModel = "Westmere"

// QEMUSuccess is QEMU's exit status when a Solo5 virtio unikernel ends:
// Solo5 writes 41 to isa-debug-exit's port whatever the status, and QEMU
// exits with (41<<1)|1. The console says the app's own status; when it
// does not (--solo5:quiet), 83 is reported as the app's 0.
const QEMUSuccess = 83

// Hardware is what a Solo5 virtio unikernel needs of its machine: a CPU
// model TCG runs it on, no ACPI (Solo5 does not use it, and so cannot be
// asked to power off: it is stopped), and isa-debug-exit at its default
// port 0x501, through which it ends the VM when it exits.
func Hardware() *pack.Hardware {
	return &pack.Hardware{
		CPU:       CPUModel,
		NoACPI:    true,
		DebugExit: &pack.DebugExit{Statuses: map[int]int{QEMUSuccess: 0}},
	}
}

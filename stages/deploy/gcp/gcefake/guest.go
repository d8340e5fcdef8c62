package gcefake

import (
	"fmt"
	"slices"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Guest stands in for the guest of an instance, since no guest boots in
// the fake: the lines its serial console shows, each some time after the
// instance starts running, and, if Exit is set, the app's exit status
// after them (the init's marker), after which the instance stops.
type Guest struct {
	Lines []Line
	Exit  *int
}

// Line is one console line, shown After the instance started running.
type Line struct {
	After time.Duration
	Text  string
}

// Stand-in markers, as the linux base's guest init prints them.
const (
	readyLine   = "unikfile-init: ready"
	addressLine = "unikfile-init: address %s/32 via dhcp"
)

// DefaultGuest prints a firmware line, a kernel line, the init's address
// (the instance's internal address) and its ready marker.
func DefaultGuest(inst *compute.Instance, features []string) Guest {
	return ReadyGuest(inst, features, 10*time.Millisecond)
}

// ReadyGuest is DefaultGuest with the ready marker after ready.
func ReadyGuest(inst *compute.Instance, features []string, ready time.Duration) Guest {
	g := Guest{Lines: bootLines(inst, features)}
	g.Lines = append(g.Lines, Line{ready, readyLine})
	return g
}

// ExitingGuest boots and then the app exits with status before it is
// ready.
func ExitingGuest(inst *compute.Instance, features []string, status int) Guest {
	return Guest{Lines: append(bootLines(inst, features), Line{5 * time.Millisecond, "app: cannot open config: no such file"}), Exit: &status}
}

// SilentGuest boots but never says it is ready.
func SilentGuest(inst *compute.Instance, features []string) Guest {
	return Guest{Lines: bootLines(inst, features)}
}

func bootLines(inst *compute.Instance, features []string) []Line {
	fw := "SeaBIOS (version 1.8.2-google)"
	if slices.Contains(features, "UEFI_COMPATIBLE") {
		fw = "UEFI: Attempting to start image."
	}
	ip := ""
	if len(inst.NetworkInterfaces) > 0 {
		ip = inst.NetworkInterfaces[0].NetworkIP
	}
	return []Line{
		{0, fw},
		{0, "Booting from Hard Disk 0..."},
		{0, "[    0.000000] Linux version 6.1.0 (gcefake stand-in guest: no kernel runs in the fake)"},
		{0, fmt.Sprintf(addressLine, ip)},
	}
}

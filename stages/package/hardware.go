package pack

// Hardware is what a guest needs of its virtual machine beyond a kernel,
// its disks, memory and one network card, as data a provider applies
// without knowing the base: a guest whose kernel is not Linux (a Solo5
// unikernel, say) may need a CPU model, no ACPI, or a device to exit
// through. The qemu provider applies all of it; a provider that cannot
// give a guest what it needs should say so rather than boot it. nil is
// the provider's usual machine.
type Hardware struct {
	// CPU is the CPU model the guest needs (QEMU's -cpu name, e.g.
	// "Westmere"); "" is the provider's choice.
	CPU string `json:"cpu,omitempty"`
	// NoACPI boots the machine without ACPI tables: the guest does not
	// use them (and so cannot be asked to power off; it is stopped).
	NoACPI bool `json:"no_acpi,omitempty"`
	// DebugExit, if set, asks for QEMU's isa-debug-exit device, through
	// which the guest ends the VM with a status of its own.
	DebugExit *DebugExit `json:"debug_exit,omitempty"`
}

// DebugExit is QEMU's isa-debug-exit device: a guest that writes V to its
// I/O port makes QEMU exit at once with status (V<<1)|1.
type DebugExit struct {
	// IOBase is the device's I/O port; 0 is QEMU's default, 0x501.
	IOBase int `json:"iobase,omitempty"`
	// Statuses map QEMU's exit statuses to the app's exit status, for an
	// end the console does not report (the console's exit line, when
	// there is one, wins). A status it does not list says nothing of the
	// app (QEMU itself exits with 1 on its own errors).
	Statuses map[int]int `json:"statuses,omitempty"`
}

// AppStatus is the app's exit status for QEMU's exit status qemu, if the
// device says what it means.
func (d *DebugExit) AppStatus(qemu int) (int, bool) {
	s, ok := d.Statuses[qemu]
	return s, ok
}

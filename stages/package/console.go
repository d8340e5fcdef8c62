package pack

// ConsoleProtocol is how a guest that does not run unikfile's init (OSv,
// say) reports on its serial console, as data a provider can apply
// without knowing the base: each rule is matched against whole console
// lines (carriage returns removed).
type ConsoleProtocol struct {
	// Boot is the prefix of the first line of every boot; a console file
	// may hold several, and only the last one's lines count. "" when a
	// console file holds one boot: all its lines count.
	Boot string `json:"boot"`
	// Ready is the prefix of the line the guest prints once the app is
	// ready: every declared port listens (or, without ports, the app has
	// started). "" when the guest prints no such line (a unikernel that is
	// the app): the console then has nothing to wait for, and readiness is
	// Accepts alone.
	Ready string `json:"ready"`
	// Accepts says that, once the Ready line (if any) has been seen, the
	// app is ready only when the guest has also accepted a connection on
	// every forwarded port, as the hypervisor sees it (QEMU's user network
	// records that the guest answered the connection's SYN): a guest that
	// cannot print a ready line of its own after its ports listen sets it.
	// A connection the host side of a forward takes proves nothing: the
	// hypervisor takes it before the guest has answered.
	Accepts bool `json:"accepts,omitempty"`
	// Exits are the lines that say the app ended, in the order they are
	// tried on each line; the first line that matches one gives the exit
	// status.
	Exits []ExitLine `json:"exits,omitempty"`
	// Address is a regular expression whose first group is the guest's
	// IPv4 address; "" when the console does not tell.
	Address string `json:"address,omitempty"`
	// Halts says the guest stops its CPU after an exit line instead of
	// powering off (Rumprun does): a provider stops the VM once it has
	// seen one, rather than waiting for it to end.
	Halts bool `json:"halts,omitempty"`
}

// ExitLine is a console line that ends the app.
type ExitLine struct {
	// Pattern is a regular expression (RE2) matched against the whole
	// line. Its first group, if it has one, is the exit status (taken
	// modulo 256, as a Linux exit status).
	Pattern string `json:"pattern"`
	// Status is the exit status of a Pattern without a group.
	Status int `json:"status,omitempty"`
}

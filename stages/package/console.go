package pack

// ConsoleProtocol is how a guest that does not run unikfile's init (OSv,
// say) reports on its serial console, as data a provider can apply
// without knowing the base: each rule is matched against whole console
// lines (carriage returns removed).
type ConsoleProtocol struct {
	// Started is the prefix of the line the guest prints once it has
	// started the app. Such a guest has no readiness check of its own: the
	// app is ready when, after this line, each of its forwarded ports
	// takes a connection that the guest does not refuse. "" means the app
	// starts with the guest (a unikernel that is the app): it has started
	// at the first line, and every line of the console counts for its
	// exit status.
	Started string `json:"started"`
	// Exits are the lines that say the app ended, in the order they are
	// tried on each line; the first line that matches one gives the exit
	// status.
	Exits []ExitLine `json:"exits,omitempty"`
	// Address is a regular expression whose first group is the guest's
	// IPv4 address; "" when the console does not tell.
	Address string `json:"address,omitempty"`
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

package guest

// ConfigPath is where the package stage writes Config inside the initramfs and
// where the init reads it.
const ConfigPath = "/etc/unikfile/init.json"

// Console markers. The init prints each on a line of its own on the serial
// console; deploy providers read them from the console log, which is the one
// channel every hypervisor and cloud offers.
const (
	// ReadyMarker is printed once every port in Config.Ports is listening.
	ReadyMarker = "unikfile-init: ready"
	// ExitMarker is followed by the app's exit status in decimal, then the
	// guest powers off.
	ExitMarker = "unikfile-init: exit status "
	// AddressMarker is followed by the guest's IPv4 address with its
	// prefix length and how it was configured ("10.0.2.15/24 via dhcp"),
	// printed once the network is up: providers that reach guests at
	// their own address learn it here.
	AddressMarker = "unikfile-init: address "
	// ErrorPrefix starts every error line of the init; hosts relay such
	// lines to the user while they wait for readiness.
	ErrorPrefix = "unikfile-init: error: "
	// PowerButtonMarker is printed, before the app starts, when the init
	// watches the ACPI power button: pressing it (QEMU's system_powerdown,
	// a cloud's stop) sends SIGTERM to the app, SIGKILL after StopGrace,
	// and the guest powers off with the app's status. A host that sees it
	// stops the guest that way before pulling the plug.
	PowerButtonMarker = "unikfile-init: stop on power button"
)

// StopGraceSeconds is how long the app gets between SIGTERM and SIGKILL
// when the guest is asked to stop.
const StopGraceSeconds = 10

// Config is everything the init needs to run the app. It is JSON so that a
// person can read it out of an image with cpio.
type Config struct {
	// App is the app's name, used as the hostname and in messages.
	App string `json:"app"`
	// Argv is the app's command line; Argv[0] is an absolute path in the image.
	Argv []string `json:"argv"`
	// Env is the app's environment, KEY=value, sorted.
	Env []string `json:"env,omitempty"`
	// EmulatedEnv joins Env when the kernel command line has
	// EmulatedParam (the host emulates the guest's CPU), for variables
	// Env does not set: what a runtime starts faster with under emulation
	// and should not have on hardware (see stages/compile's Java launch).
	EmulatedEnv []string `json:"emulated_env,omitempty"`
	// Dir is the app's working directory.
	Dir string `json:"dir,omitempty"`
	// Ports are the TCP ports the app listens on; ReadyMarker is printed when
	// all of them are listening.
	Ports []int `json:"ports,omitempty"`
	// Modules are kernel module paths in the image, in load order (every
	// module after the modules it depends on).
	Modules []string `json:"modules,omitempty"`
	// Net configures the first ethernet interface.
	Net Net `json:"net"`
	// Root, when set, is the app's root filesystem on a read-only disk;
	// the initramfs then holds only the init and this file. The init
	// mounts it under a writable overlay (changes stay in memory) and
	// makes it the root before it starts the app.
	Root *Root `json:"root,omitempty"`
}

// Root is a root filesystem on a disk.
type Root struct {
	// Device is its block device, e.g. /dev/vda (the first virtio disk).
	Device string `json:"device"`
	// FSType is its filesystem, e.g. erofs.
	FSType string `json:"fstype"`
}

// Net is the guest's network setup: DHCP first, then the static fallback.
type Net struct {
	// DHCP enables a DHCP client on the first ethernet interface.
	DHCP bool `json:"dhcp"`
	// DHCPTimeoutMillis bounds the DHCP exchange before the fallback is used.
	DHCPTimeoutMillis int `json:"dhcp_timeout_ms,omitempty"`
	// Static is used when DHCP is off or gets no answer. Empty means none.
	Static *Static `json:"static,omitempty"`
}

// Static is a fixed IPv4 configuration.
type Static struct {
	Address string   `json:"address"` // CIDR, e.g. 10.0.2.15/24
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
}

// IPParam is the kernel command line parameter with which the host tells
// the guest its network, when the host knows it (QEMU's user network has
// fixed addresses): unikfile.ip=ADDRESS/PREFIX[,GATEWAY[,DNS...]] (see
// IPCmdline). The init then configures it at once instead of asking DHCP,
// an exchange of 50-75 ms under TCG, whatever the image's Net says. The
// first one on the command line counts, and unikfile.ip=dhcp keeps the
// image's own settings: an image whose command line has one is not given
// another by the host.
const IPParam = "unikfile.ip"

// EmulatedParam on the kernel command line says the host emulates the
// guest's CPU (QEMU's TCG): the init adds Config.EmulatedEnv to the app's
// environment.
const EmulatedParam = "unikfile.emulated"

// IPCmdline is s as IPParam, with a leading space, for a kernel command line.
func IPCmdline(s Static) string {
	v := s.Address
	if s.Gateway != "" || len(s.DNS) > 0 {
		v += "," + s.Gateway
	}
	for _, d := range s.DNS {
		v += "," + d
	}
	return " " + IPParam + "=" + v
}

// QEMUUserNet is the static fallback for QEMU user-mode networking (slirp).
var QEMUUserNet = Static{Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}}

package qemu

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	pack "github.com/unikfile/unikfile/stages/package"
)

// Accelerators.
const (
	AccelAuto = "auto" // KVM when a real probe shows it works, else TCG
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Config is how one instance's QEMU is started. It is stored with the
// instance (state.Instance.Config) and Args turns it into the command line.
type Config struct {
	Binary    string `json:"binary"`  // absolute path of qemu-system-x86_64
	Machine   string `json:"machine"` // MachinePC, MachineQ35 or MachineMicroVM
	Accel     string `json:"accel"`   // "tcg" or "kvm", never "auto"
	MemoryMiB int    `json:"memory_mib"`
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel,omitempty"` // absolute paths
	Initrd    string `json:"initrd,omitempty"`
	Cmdline   string `json:"cmdline,omitempty"`
	// RootDisk is the direct-boot image's root file system disk (an
	// absolute path), attached read-only on virtio-blk.
	RootDisk string `json:"root_disk,omitempty"`
	// CPUModel, NoACPI and DebugExit are what the image's guest needs of
	// the machine (pack.Image.Hardware): a -cpu model for every
	// accelerator, a machine without ACPI tables, and QEMU's
	// isa-debug-exit device with what its exit statuses mean, kept so
	// that a later command reads them the same way.
	CPUModel  string          `json:"cpu_model,omitempty"`
	NoACPI    bool            `json:"no_acpi,omitempty"`
	DebugExit *pack.DebugExit `json:"debug_exit,omitempty"`
	// GuestConsole is the image's console protocol when its guest is not
	// unikfile's init (pack.Image.Console); kept so that a later command
	// reads the exit status from the console the same way.
	GuestConsole *pack.ConsoleProtocol `json:"guest_console,omitempty"`
	// A disk image boots from Disk (absolute path; DiskFormat is QEMU's
	// name for its format) through the firmware instead of -kernel.
	// Writes go to a temporary overlay (snapshot=on): the image in the
	// cache is never changed.
	Disk       string `json:"disk,omitempty"`
	DiskFormat string `json:"disk_format,omitempty"`
	// Firmware is FirmwareUEFI for OVMF (OVMFCode read-only, OVMFVars the
	// instance's own copy of the variable store); otherwise SeaBIOS.
	Firmware string `json:"firmware,omitempty"`
	OVMFCode string `json:"ovmf_code,omitempty"`
	OVMFVars string `json:"ovmf_vars,omitempty"`
	// Forwards are the port forwards QEMU was started with. After a
	// replacement took over an old instance's ports, the instance's Ports
	// say where they are now.
	Forwards []Forward `json:"forwards,omitempty"`
	Console  string    `json:"console"` // the serial console's file
	// ConsoleRotates says the console is the chardev consoleID, which
	// rotateConsole can point at a new file; instances started before
	// consoles rotated have a plain -serial file.
	ConsoleRotates bool   `json:"console_rotates,omitempty"`
	QMP            string `json:"qmp"`      // the QMP unix socket
	PIDFile        string `json:"pid_file"` // written by QEMU
	// Log receives QEMU's own standard output and error; it is not an
	// argument but where they were redirected.
	Log string `json:"log"`
}

// Forward forwards TCP connections to Bind:Host on the host to Guest in the
// guest.
type Forward struct {
	Bind  string `json:"bind"`
	Host  int    `json:"host"`
	Guest int    `json:"guest"`
}

// Rule is the forward in QEMU's hostfwd syntax.
func (f Forward) Rule() string {
	return fmt.Sprintf("tcp:%s:%d-:%d", f.Bind, f.Host, f.Guest)
}

// ramID names the guest's memory backend under TCG. QEMU backs a
// guest's RAM with transparent huge pages where it can, so the first
// touch of any byte in a 2 MiB stretch makes the host clear all of it;
// under TCG that is on the vCPU's own thread, and on a host that is
// itself a VM each of those pages is also a fault to the hypervisor
// below. A memfd (shared memory, which takes huge pages only where the
// host enables them for shmem, not by default) is cleared 4 KiB at a
// time, as the guest touches it: a Python app answered 0.3-0.5 s sooner
// (3.0-3.3 s instead of 3.5-4.0 s, QEMU's system time down from 0.55-1.2
// s to 0.3-0.45 s; Go's hello, which touches little memory, the same).
// Under KVM huge pages let the processor map the guest's memory 2 MiB
// at a time (fewer TLB misses for the whole run), which is worth more
// than a cheaper first touch, so KVM keeps QEMU's default.
const ramID = "ram0"

// netdevID names the one network backend, for -netdev and hostfwd_add.
const netdevID = "n0"

// CPU is the -cpu model: the image's when it names one, else the host's
// own with KVM and everything TCG can emulate otherwise.
func (c Config) CPU() string {
	if c.CPUModel != "" {
		return c.CPUModel
	}
	if c.Accel == AccelKVM {
		return "host"
	}
	return "max"
}

// Args is QEMU's command line, without the program name.
func (c Config) Args() []string {
	netdev := "user,id=" + netdevID
	for _, f := range c.Forwards {
		netdev += ",hostfwd=" + f.Rule()
	}
	args := []string{
		"-M", c.machineArg(),
		"-accel", c.Accel,
		"-cpu", c.CPU(),
		"-m", strconv.Itoa(c.MemoryMiB),
	}
	if c.Accel == AccelTCG {
		args = append(args, "-object", "memory-backend-memfd,id="+ramID+",size="+strconv.Itoa(c.MemoryMiB)+"M")
	}
	args = append(args,
		"-smp", strconv.Itoa(c.CPUs),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-no-reboot",
	)
	if c.ConsoleRotates {
		args = append(args, "-chardev", "file,id="+consoleID+",path="+c.Console+",append=on", "-serial", "chardev:"+consoleID)
	} else {
		args = append(args, "-serial", "file:"+c.Console)
	}
	if c.Disk != "" {
		args = append(args, c.diskArgs()...)
	} else {
		args = append(args, "-kernel", c.Kernel)
		if c.Initrd != "" {
			args = append(args, "-initrd", c.Initrd)
		}
		args = append(args, "-append", c.Cmdline)
		if c.RootDisk != "" {
			// Read-only and shared: the file system is never written,
			// and every instance of the image reads the cached file.
			args = append(args, c.rootArgs()...)
		}
	}
	if c.DebugExit != nil {
		dev := "isa-debug-exit"
		if c.DebugExit.IOBase != 0 {
			dev += fmt.Sprintf(",iobase=%#x", c.DebugExit.IOBase)
		}
		args = append(args, "-device", dev)
	}
	args = append(args,
		"-netdev", netdev,
		"-device", c.nicArg(),
		"-qmp", "unix:"+c.QMP+",server=on,wait=off",
		"-pidfile", c.PIDFile,
	)
	return args
}

// FirmwareUEFI selects OVMF; any other Firmware is QEMU's SeaBIOS.
const FirmwareUEFI = "uefi"

// diskArgs boot the disk: OVMF's code and variables as flash for UEFI,
// the disk on virtio.
func (c Config) diskArgs() []string {
	var args []string
	if c.Firmware == FirmwareUEFI {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+c.OVMFCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+c.OVMFVars)
	}
	return append(args, "-drive", "file="+c.Disk+",format="+c.DiskFormat+",if=virtio,snapshot=on")
}

// maxSocketPath is the longest path a unix socket address holds.
const maxSocketPath = 107

// Validate rejects what QEMU's option syntax cannot carry.
func (c Config) Validate() error {
	if c.Accel != AccelKVM && c.Accel != AccelTCG {
		return fmt.Errorf("accelerator %q: want kvm or tcg", c.Accel)
	}
	if c.MemoryMiB <= 0 || c.CPUs <= 0 {
		return fmt.Errorf("memory %d MiB and %d CPUs: both must be positive", c.MemoryMiB, c.CPUs)
	}
	if strings.ContainsAny(c.CPUModel, ", ") {
		return fmt.Errorf("CPU model %q: a QEMU CPU model is one name (qemu-system-x86_64 -cpu help lists them)", c.CPUModel)
	}
	if d := c.DebugExit; d != nil && (d.IOBase < 0 || d.IOBase > 0xffff) {
		return fmt.Errorf("isa-debug-exit I/O port %#x: ports are 0-0xffff", d.IOBase)
	}
	if strings.Contains(c.QMP, ",") || strings.Contains(c.Console, ",") {
		return fmt.Errorf("QMP socket path %q contains a comma, which QEMU's option syntax cannot carry; use a state directory without commas", c.QMP)
	}
	if len(c.QMP) > maxSocketPath {
		return fmt.Errorf("QMP socket path %q is longer than %d bytes, the limit of unix sockets; use a shorter state directory (UNIKFILE_STATE_DIR)", c.QMP, maxSocketPath)
	}
	for _, p := range []string{c.Disk, c.RootDisk, c.OVMFCode, c.OVMFVars} {
		if strings.Contains(p, ",") {
			return fmt.Errorf("path %q contains a comma, which QEMU's -drive syntax cannot carry; use a cache and state directory without commas", p)
		}
	}
	if c.Firmware == FirmwareUEFI && (c.OVMFCode == "" || c.OVMFVars == "") {
		return fmt.Errorf("UEFI boot without OVMF's code and variables files")
	}
	seen := map[int]bool{}
	for _, f := range c.Forwards {
		if err := validBind(f.Bind); err != nil {
			return err
		}
		if f.Host <= 0 || f.Host > 65535 || f.Guest <= 0 || f.Guest > 65535 {
			return fmt.Errorf("port forward %s: ports must be 1-65535", f.Rule())
		}
		if seen[f.Host] {
			return fmt.Errorf("host port %d is forwarded twice", f.Host)
		}
		seen[f.Host] = true
	}
	return nil
}

// validBind accepts what QEMU's user networking can listen on: an IPv4
// address.
func validBind(bind string) error {
	a, err := netip.ParseAddr(bind)
	if err != nil || !a.Is4() {
		return fmt.Errorf("bind address %q: QEMU user networking forwards IPv4 addresses only (e.g. 127.0.0.1 or 0.0.0.0)", bind)
	}
	return nil
}

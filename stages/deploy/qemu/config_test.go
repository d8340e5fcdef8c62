package qemu

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestArgsGolden(t *testing.T) {
	base := Config{
		Binary: "/usr/bin/qemu-system-x86_64", Machine: "pc", Accel: AccelTCG, MemoryMiB: 256, CPUs: 1,
		Kernel: "/images/hello/vmlinuz", Initrd: "/images/hello/initrd",
		Cmdline: "console=ttyS0 panic=-1 quiet",
		Forwards: []Forward{
			{Bind: "127.0.0.1", Host: 8080, Guest: 8080},
			{Bind: "127.0.0.1", Host: 18443, Guest: 443},
		},
		Console: "/run/i/console.log", QMP: "/run/i/qmp.sock", PIDFile: "/run/i/qemu.pid", Log: "/run/i/qemu.log",
		ConsoleRotates: true,
	}
	kvm := base
	kvm.Accel, kvm.CPUs, kvm.MemoryMiB, kvm.Forwards, kvm.Initrd = AccelKVM, 2, 512, nil, ""
	uefi := base
	uefi.Kernel, uefi.Initrd, uefi.Cmdline, uefi.Machine = "", "", "", "q35"
	uefi.Disk, uefi.DiskFormat, uefi.Firmware = "/images/hello/disk.qcow2", "qcow2", FirmwareUEFI
	uefi.OVMFCode, uefi.OVMFVars = "/usr/share/OVMF/OVMF_CODE_4M.fd", "/run/i/OVMF_VARS.fd"
	bios := base
	bios.Kernel, bios.Initrd, bios.Cmdline = "", "", ""
	bios.Disk, bios.DiskFormat = "/images/hello/disk.vmdk", "vmdk"
	micro := base
	micro.Machine, micro.Kernel, micro.RootDisk = MachineMicroVM, "/images/py/kernel", "/images/py/root.erofs"
	micro.Cmdline += TCGMicroVMCmdline(2300000, 0)
	rootDisk := base
	rootDisk.Initrd, rootDisk.RootDisk, rootDisk.Cmdline = "", "/images/osv/rootfs.img", "--rootfs=rofs /app/main"
	solo5 := base
	solo5.Initrd, solo5.Cmdline = "", "--ipv4=10.0.2.15/24 --ipv4-gateway=10.0.2.2"
	solo5.CPUModel, solo5.NoACPI, solo5.DebugExit = "Westmere", true, &pack.DebugExit{Statuses: map[int]int{83: 0}}
	solo5KVM := solo5
	solo5KVM.Accel, solo5KVM.DebugExit = AccelKVM, &pack.DebugExit{IOBase: 0xf4}
	var b strings.Builder
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"tcg, two forwards", base}, {"kvm, no forwards, no initrd", kvm}, {"qcow2 disk, uefi", uefi}, {"vmdk disk, bios", bios}, {"microvm, root disk", micro}, {"kernel and a read-only root disk (osv)", rootDisk},
		{"a machine the image asks for: CPU model, no ACPI, isa-debug-exit (mirage)", solo5}, {"the image's CPU model under kvm too, an exit device at another port", solo5KVM}} {
		if err := c.cfg.Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		b.WriteString("# " + c.name + "\n")
		for _, a := range c.cfg.Args() {
			b.WriteString(a + "\n")
		}
		b.WriteString("\n")
	}
	golden(t, "args.golden", b.String())
}

func TestValidate(t *testing.T) {
	ok := Config{Accel: AccelTCG, MemoryMiB: 64, CPUs: 1, QMP: "/r/qmp.sock"}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"auto is not a final accelerator", func(c *Config) { c.Accel = AccelAuto }, "accelerator"},
		{"comma in socket path", func(c *Config) { c.QMP = "/a,b/qmp.sock" }, "comma"},
		{"comma in console path", func(c *Config) { c.Console = "/a,b/console.log" }, "comma"},
		{"long socket path", func(c *Config) { c.QMP = "/" + strings.Repeat("x", 120) }, "longer"},
		{"IPv6 bind", func(c *Config) { c.Forwards = []Forward{{Bind: "::1", Host: 1, Guest: 1}} }, "IPv4"},
		{"a CPU model with options", func(c *Config) { c.CPUModel = "Westmere,+avx" }, "one name"},
		{"an exit device beyond the I/O ports", func(c *Config) { c.DebugExit = &pack.DebugExit{IOBase: 0x10000} }, "I/O port"},
		{"twice the same host port", func(c *Config) {
			c.Forwards = []Forward{{Bind: "127.0.0.1", Host: 80, Guest: 1}, {Bind: "127.0.0.1", Host: 80, Guest: 2}}
		}, "twice"},
	} {
		cfg := ok
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

func TestMachineFor(t *testing.T) {
	for _, c := range []struct {
		img  pack.Image
		want string
	}{
		{pack.Image{KernelEntry: pack.KernelEntryPVH, Bus: pack.BusVirtioMMIO}, MachineMicroVM},
		{pack.Image{KernelEntry: pack.KernelEntryPVH}, MachinePC}, // a PVH kernel with PCI devices
		{pack.Image{Bus: pack.BusVirtioMMIO}, MachinePC},          // a bzImage: no PVH entry for microvm
		{pack.Image{}, MachinePC},
	} {
		if got := machineFor(&c.img); got != c.want {
			t.Errorf("machineFor(%+v) = %s, want %s", c.img, got, c.want)
		}
	}
}

// A direct boot of a linux image tells its init the user network's fixed
// address (guest.IPParam) and, under TCG, that its CPU is emulated;
// another base's command line is its own, and a microvm under TCG adds
// its clock settings after either, with every CPU's delay loop when the
// kernel's HZ is known.
func TestMachineCmdline(t *testing.T) {
	p := &Provider{}
	p.tsc.once.Do(func() { p.tsc.kHz = 2300000 })
	pc := Config{Machine: MachinePC, Accel: AccelTCG}
	micro := Config{Machine: MachineMicroVM, Accel: AccelTCG}
	pcKVM := Config{Machine: MachinePC, Accel: AccelKVM}
	for _, tc := range []struct {
		cfg  Config
		img  pack.Image
		want string
	}{
		{pc, pack.Image{Base: "linux", Cmdline: "console=ttyS0"}, "console=ttyS0 unikfile.ip=10.0.2.15/24,10.0.2.2,10.0.2.3 unikfile.emulated"},
		{pcKVM, pack.Image{Base: "linux", Cmdline: "console=ttyS0"}, "console=ttyS0 unikfile.ip=10.0.2.15/24,10.0.2.2,10.0.2.3"},
		{micro, pack.Image{Base: "linux", Cmdline: "console=ttyS0"}, "console=ttyS0 unikfile.ip=10.0.2.15/24,10.0.2.2,10.0.2.3 unikfile.emulated tsc_early_khz=2300000 tsc=reliable"},
		// A kernel of 250 Hz: 2.3 GHz is 9.2 million TSC cycles per jiffy.
		{micro, pack.Image{Base: "linux", Cmdline: "console=ttyS0", KernelHZ: 250}, "console=ttyS0 unikfile.ip=10.0.2.15/24,10.0.2.2,10.0.2.3 unikfile.emulated tsc_early_khz=2300000 tsc=reliable lpj=9200000"},
		{pc, pack.Image{Base: "linux", Cmdline: "console=ttyS0 unikfile.ip=dhcp"}, "console=ttyS0 unikfile.ip=dhcp unikfile.emulated"},
		{pc, pack.Image{Base: "osv", Cmdline: "--rootfs=rofs /app/main"}, "--rootfs=rofs /app/main"},
	} {
		if got := p.machineCmdline(tc.cfg, &tc.img); got != tc.want {
			t.Errorf("%s on %s: %q, want %q", tc.img.Base, tc.cfg.Machine, got, tc.want)
		}
	}
}

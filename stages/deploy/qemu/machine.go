package qemu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/atomicfile"

	pack "github.com/unikfile/unikfile/stages/package"
)

// Machine types.
const (
	MachinePC      = "pc"
	MachineQ35     = "q35"
	MachineMicroVM = "microvm"
)

// machineFor is the fastest machine a kernel+initrd image boots on:
// QEMU's microvm for a kernel that enters at its PVH entry point and
// finds its devices on virtio-mmio (no firmware runs, there is no PCI bus
// to scan and no option ROM to load: QEMU jumps into the uncompressed
// kernel); the pc machine for every other kernel (a bzImage through
// SeaBIOS and QEMU's linuxboot, devices on PCI).
func machineFor(img *pack.Image) string {
	if img.KernelEntry == pack.KernelEntryPVH && img.Bus == pack.BusVirtioMMIO {
		return MachineMicroVM
	}
	return MachinePC
}

// machineArg is -M's value. On microvm: no option ROMs (nothing boots
// from a NIC) and the 8250 UART for the console. The RTC stays (the
// guest reads the time of day from it), and so does ACPI: its power
// button is how a stop reaches the guest's init.
// An image that asks for no ACPI (pack.Hardware.NoACPI) gets acpi=off.
func (c Config) machineArg() string {
	m := c.Machine
	if c.Machine == MachineMicroVM {
		m = MachineMicroVM + ",x-option-roms=off,isa-serial=on"
	}
	if c.NoACPI {
		m += ",acpi=off"
	}
	if c.Accel == AccelTCG {
		m += ",memory-backend=" + ramID
	}
	return m
}

// nicArg is the NIC's -device value: virtio-net on the machine's bus.
// On PCI, romfile= drops the NIC's iPXE option ROM: nothing boots from
// the network, and loading it costs time under TCG.
func (c Config) nicArg() string {
	if c.Machine == MachineMicroVM {
		return "virtio-net-device,netdev=" + netdevID
	}
	return "virtio-net-pci,netdev=" + netdevID + ",romfile="
}

// tscOnce measures the host's TSC frequency once per provider (and, with
// a state directory, once per boot of the host: hostTSCkHz).
type tscOnce struct {
	once sync.Once
	kHz  int
}

// machineCmdline is the kernel command line of a direct boot of img: the
// image's own with what the machine adds. The image's own command line,
// and its digest, stay as they were.
//
// A linux image's init is told its address on QEMU's user network, which
// is fixed (guest.QEMUUserNet on the one -netdev user), so that it
// configures it at once instead of asking DHCP (guest.IPParam), unless
// the image's command line says otherwise (unikfile.ip=dhcp); under TCG
// it is told its CPU is emulated (guest.EmulatedParam), so that a runtime
// that starts faster so (a JVM) is started so.
func (p *Provider) machineCmdline(cfg Config, img *pack.Image) string {
	cmdline := img.Cmdline
	if img.Base == linuxBase && !strings.Contains(" "+cmdline, " "+guest.IPParam+"=") {
		cmdline += guest.IPCmdline(guest.QEMUUserNet)
	}
	if img.Base == linuxBase && cfg.Accel == AccelTCG {
		cmdline += " " + guest.EmulatedParam
	}
	if cfg.Machine != MachineMicroVM || cfg.Accel != AccelTCG {
		return cmdline
	}
	p.tsc.once.Do(func() { p.tsc.kHz = p.hostTSCkHz() })
	return cmdline + TCGMicroVMCmdline(p.tsc.kHz, img.KernelHZ)
}

// linuxBase is the base whose images boot the guest init (guest/init).
const linuxBase = "linux"

// TCGMicroVMCmdline is what a kernel on a microvm under TCG needs on its
// command line (with a leading space), given the host's TSC frequency
// (HostTSCkHz; 0 when unknown): the guest's TSC is the host's, but a
// microvm has no timer the kernel can calibrate it against on a loaded
// host (no HPET, no ACPI PM timer, and the emulated PIT's readings are
// too irregular), so without tsc_early_khz it marks the TSC unstable and
// keeps time in jiffies. tsc=reliable keeps the clocksource watchdog,
// which compares the TSC with those irregular jiffies, from doing the
// same later. With the kernel's timer frequency (hz, CONFIG_HZ; 0 when
// unknown) it adds lpj, the TSC cycles per jiffy: the first CPU derives
// its delay loop from tsc_early_khz, but every other one measures its
// own over a dozen jiffies while the first waits, which took a second
// CPU's bring-up from 19 to 90 ms of the boot under TCG.
func TCGMicroVMCmdline(tscKHz, hz int) string {
	if tscKHz <= 0 {
		return ""
	}
	s := " tsc_early_khz=" + strconv.Itoa(tscKHz) + " tsc=reliable"
	if hz > 0 {
		s += " lpj=" + strconv.Itoa(tscKHz*1000/hz)
	}
	return s
}

// rootArgs attach the root disk read-only on the machine's virtio bus.
func (c Config) rootArgs() []string {
	dev := "virtio-blk-pci"
	if c.Machine == MachineMicroVM {
		dev = "virtio-blk-device"
	}
	return []string{
		"-drive", "file=" + c.RootDisk + ",if=none,id=rootfs,format=raw,readonly=on",
		"-device", dev + ",drive=rootfs",
	}
}

// tscRecord is a measured TSC frequency, kept in the state directory: the
// frequency is fixed for a boot of the host, and measuring it takes 60 ms,
// a twentieth of a microvm's boot under TCG.
type tscRecord struct {
	BootID string `json:"boot_id"`
	KHz    int    `json:"khz"`
}

// hostTSCkHz is HostTSCkHz, measured once per boot of the host when the
// provider has a state directory.
func (p *Provider) hostTSCkHz() int {
	bootID := readBootID()
	if p.stateDir == "" || bootID == "" {
		return HostTSCkHz()
	}
	path := filepath.Join(p.stateDir, Name, "tsc.json")
	var rec tscRecord
	if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &rec) == nil && rec.BootID == bootID && rec.KHz > 0 {
		return rec.KHz
	}
	khz := HostTSCkHz()
	if khz > 0 {
		// One that cannot be written only costs a measurement next time.
		_ = atomicfile.WriteJSON(path, tscRecord{BootID: bootID, KHz: khz}, 0o644)
	}
	return khz
}

package kbuild

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// A kernel's configuration is Linux's `allnoconfig` (every option off)
// with a fragment forced on through KCONFIG_ALLCONFIG: the options of
// kernel/configs/tiny.config and arch/x86/configs/tiny.config (what
// `make tinyconfig` adds), then the options of each feature the Needs
// name. Every driver is built in; there are no modules.

// tinyOptions are tinyconfig's own choices, except that SLUB replaces
// SLOB (a real allocator for runtimes with many threads and objects) and
// LZ4 replaces XZ for the bzImage (it unpacks several times faster, and
// boot time matters more than a few hundred KiB).
var tinyOptions = []string{
	"CONFIG_64BIT=y",
	"CONFIG_EXPERT=y",
	"CONFIG_EMBEDDED=y",
	"CONFIG_CC_OPTIMIZE_FOR_SIZE=y",
	"CONFIG_KERNEL_LZ4=y",
	"CONFIG_SLUB=y",
	"CONFIG_UNWINDER_GUESS=y",
	"CONFIG_NO_HZ_IDLE=y",
	"CONFIG_HIGH_RES_TIMERS=y",
	"CONFIG_LOCALVERSION=\"-unikfile\"",
}

// features maps a feature name (what Needs lists) to the options it
// forces on. A feature's options must survive Kconfig's dependency
// resolution; Check verifies that against the real source.
var features = map[string][]string{
	// What every program, the guest init first, needs from the kernel:
	// processes, threads and their synchronisation, the event and timer
	// file descriptors, users and groups, file locks, memory advice,
	// /proc, /sys, /proc/sys, devtmpfs and tmpfs, ELF and #! programs,
	// printk for panics, several CPUs, and the paravirtual clock and
	// spinlocks under KVM.
	"base": {
		"CONFIG_MULTIUSER=y", "CONFIG_FUTEX=y", "CONFIG_EPOLL=y", "CONFIG_SIGNALFD=y",
		"CONFIG_TIMERFD=y", "CONFIG_EVENTFD=y", "CONFIG_SHMEM=y", "CONFIG_ADVISE_SYSCALLS=y",
		"CONFIG_FILE_LOCKING=y", "CONFIG_POSIX_TIMERS=y", "CONFIG_INOTIFY_USER=y",
		"CONFIG_PRINTK=y", "CONFIG_BUG=y", "CONFIG_SYSCTL=y", "CONFIG_PROC_SYSCTL=y",
		"CONFIG_PROC_FS=y", "CONFIG_SYSFS=y", "CONFIG_DEVTMPFS=y", "CONFIG_TMPFS=y",
		"CONFIG_BINFMT_ELF=y", "CONFIG_BINFMT_SCRIPT=y",
		"CONFIG_SMP=y", "CONFIG_NR_CPUS=64",
		"CONFIG_HYPERVISOR_GUEST=y", "CONFIG_PARAVIRT=y", "CONFIG_KVM_GUEST=y",
		// The random pool seeded from the CPU (RDRAND, which TCG
		// emulates) and the boot loader: without it getrandom(), which
		// every Go program calls first, blocks until interrupts have
		// gathered entropy, for minutes on an idle guest.
		"CONFIG_RANDOM_TRUST_CPU=y", "CONFIG_RANDOM_TRUST_BOOTLOADER=y",
	},
	// The serial console (ttyS0 on the 8250 UART every x86 hypervisor has).
	// One UART: probing the three others costs emulated port accesses.
	"console": {"CONFIG_TTY=y", "CONFIG_SERIAL_8250=y", "CONFIG_SERIAL_8250_CONSOLE=y", "CONFIG_SERIAL_8250_NR_UARTS=1", "CONFIG_SERIAL_8250_RUNTIME_UARTS=1"},
	// The initramfs: an uncompressed cpio, no decompressors.
	"initramfs": {"CONFIG_BLK_DEV_INITRD=y"},
	// IPv4 and unix sockets, and network devices.
	"net":  {"CONFIG_NET=y", "CONFIG_INET=y", "CONFIG_UNIX=y", "CONFIG_NETDEVICES=y", "CONFIG_NET_CORE=y"},
	"ipv6": {"CONFIG_IPV6=y"},
	// The C library's extras: System V IPC, POSIX message queues, AIO,
	// membarrier, restartable sequences.
	"libc": {"CONFIG_SYSVIPC=y", "CONFIG_POSIX_MQUEUE=y", "CONFIG_AIO=y", "CONFIG_MEMBARRIER=y", "CONFIG_RSEQ=y"},
	// ACPI and its power button as an input device: QEMU's
	// system_powerdown and a cloud's stop reach the init, which stops
	// the app with SIGTERM. The PCI core comes with it: without it the
	// ACPI tables of QEMU's machines, microvm's too, fail to load
	// ("AE_BAD_PARAMETER, During Region initialization").
	//
	// With ACPI, the serial port is described by its tables (PNP0501):
	// on a hardware-reduced machine such as microvm the legacy IRQ 4 is
	// routed only through them, so without the 8250's PNP driver the
	// kernel's own messages (polled) still show, and everything user
	// space writes waits for a transmit interrupt that never comes.
	"power-button": {"CONFIG_ACPI=y", "CONFIG_ACPI_BUTTON=y", "CONFIG_INPUT=y", "CONFIG_INPUT_EVDEV=y", "CONFIG_PCI=y", "CONFIG_SERIAL_8250_PNP=y"},
	// Buses and entry points.
	"virtio-mmio": {"CONFIG_VIRTIO_MENU=y", "CONFIG_VIRTIO_MMIO=y", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y"},
	"virtio-pci":  {"CONFIG_VIRTIO_MENU=y", "CONFIG_VIRTIO_PCI=y"},
	"pci":         {"CONFIG_PCI=y", "CONFIG_PCI_MSI=y"},
	"pvh":         {"CONFIG_PVH=y"},
	"efi-stub":    {"CONFIG_EFI=y", "CONFIG_EFI_STUB=y"},
	// Devices.
	"virtio-net":  {"CONFIG_VIRTIO_NET=y"},
	"virtio-blk":  {"CONFIG_BLOCK=y", "CONFIG_BLK_DEV=y", "CONFIG_VIRTIO_BLK=y"},
	"virtio-scsi": {"CONFIG_BLOCK=y", "CONFIG_SCSI=y", "CONFIG_BLK_DEV_SD=y", "CONFIG_SCSI_LOWLEVEL=y", "CONFIG_SCSI_VIRTIO=y"},
	"ena":         {"CONFIG_ETHERNET=y", "CONFIG_NET_VENDOR_AMAZON=y", "CONFIG_ENA_ETHERNET=y"},
	"gve":         {"CONFIG_ETHERNET=y", "CONFIG_NET_VENDOR_GOOGLE=y", "CONFIG_GVE=y"},
	"vmxnet3":     {"CONFIG_VMXNET3=y"},
	"nvme":        {"CONFIG_BLOCK=y", "CONFIG_BLK_DEV_NVME=y"},
	"pvscsi":      {"CONFIG_BLOCK=y", "CONFIG_SCSI=y", "CONFIG_BLK_DEV_SD=y", "CONFIG_SCSI_LOWLEVEL=y", "CONFIG_VMWARE_PVSCSI=y"},
	// A read-only root filesystem on a virtio disk (EROFS) under a
	// writable overlay in memory.
	"root-disk": {"CONFIG_BLOCK=y", "CONFIG_BLK_DEV=y", "CONFIG_VIRTIO_BLK=y", "CONFIG_MISC_FILESYSTEMS=y", "CONFIG_EROFS_FS=y", "CONFIG_OVERLAY_FS=y"},
}

// Known lists every feature name, sorted.
func Known() []string { return sortedKeys(features) }

// Fragment is the configuration fragment for n: tinyOptions, then each
// feature's options, sorted and unique within each part, one
// `CONFIG_NAME=value` per line. It is a pure function of n.
func Fragment(n Needs) (string, error) {
	var opts []string
	seen := map[string]bool{}
	for _, f := range n.Features {
		o, ok := features[f]
		if !ok {
			return "", fmt.Errorf("kernel feature %q is not known (known: %s)", f, strings.Join(Known(), ", "))
		}
		for _, line := range o {
			if !seen[line] {
				seen[line] = true
				opts = append(opts, line)
			}
		}
	}
	sort.Strings(opts)
	var b strings.Builder
	b.WriteString("# unikfile kernel: tinyconfig plus " + n.String() + "\n")
	for _, line := range tinyOptions {
		b.WriteString(line + "\n")
	}
	for _, line := range opts {
		b.WriteString(line + "\n")
	}
	return b.String(), nil
}

// ConfigDigest is the sha256 (hex) of n's fragment: with the source
// version and the compiler it keys the built kernel.
func ConfigDigest(n Needs) (string, error) {
	frag, err := Fragment(n)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(frag))
	return hex.EncodeToString(h[:]), nil
}

// Missing returns the options of fragment that the final configuration
// (a .config's text) does not have as asked: Kconfig drops an option
// whose dependencies are off, silently. Comment lines are ignored.
func Missing(fragment, config string) []string {
	have := map[string]bool{}
	for _, line := range strings.Split(config, "\n") {
		have[strings.TrimSpace(line)] = true
	}
	var missing []string
	for _, line := range strings.Split(fragment, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !have[line] {
			missing = append(missing, line)
		}
	}
	return missing
}

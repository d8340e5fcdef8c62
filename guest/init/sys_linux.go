//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"
)

// mounts are the pseudo filesystems an app expects, in mount order.
var mounts = []struct {
	fstype, target string
	flags          uintptr
	data           string
}{
	{"proc", "/proc", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, ""},
	{"sysfs", "/sys", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", syscall.MS_NOSUID, "mode=0755"},
	{"tmpfs", "/tmp", syscall.MS_NOSUID | syscall.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", syscall.MS_NOSUID | syscall.MS_NODEV, "mode=0755"},
}

// mountAll mounts the pseudo filesystems, creating mount points as needed.
// A filesystem already mounted there (EBUSY) is fine.
func mountAll() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.target, err)
		}
		err := syscall.Mount(m.fstype, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// loadModule loads one kernel module file with finit_module(2). A module
// that is already loaded is not an error.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	params, _ := syscall.BytePtrFromString("")
	_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(params)), 0)
	if errno != 0 && errno != syscall.EEXIST {
		return errno
	}
	return nil
}

// uptime is seconds since boot (CLOCK_BOOTTIME), for verbose lines.
func uptime() float64 {
	const clockBoottime = 7
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockBoottime, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// drain waits until what was written to a terminal has been sent
// (tcdrain), so that the exit marker leaves the serial port before the
// machine goes off. Anything but a terminal returns at once.
func drain(w any) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	const tcsbrk = 0x5409 // TCSBRK with a non-zero argument is tcdrain
	_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), tcsbrk, 1)
}

// powerOff syncs and powers the machine off. It never returns: PID 1 must
// not exit, or the kernel panics.
func powerOff() {
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	// No ACPI power-off: a reboot ends QEMU run with -no-reboot.
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	for {
		syscall.Pause()
	}
}

// pciModaliases returns the modalias of every PCI device. No PCI bus is no
// error (no devices); an unreadable sysfs is.
func pciModaliases() ([]string, error) {
	const dir = "/sys/bus/pci/devices"
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat("/sys/bus"); serr == nil {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/modalias")
		if err != nil {
			return nil, err
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out, nil
}

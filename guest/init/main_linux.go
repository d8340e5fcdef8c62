//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/unikfile/unikfile/guest"
)

func main() {
	log := &logger{w: os.Stdout, clock: uptime}
	status := boot(log)
	log.raw(guest.ExitMarker + strconv.Itoa(status))
	drain(log.w)
	powerOff()
}

// statusNotStarted is reported when setup fails before the app runs (the
// shells' "command not found").
const statusNotStarted = 127

// boot sets the machine up, runs the app and returns its exit status.
func boot(log *logger) (status int) {
	started := false
	defer func() {
		if r := recover(); r != nil {
			log.errorf("panic: %v", r)
			status = statusNotStarted
			if started {
				status = 255
			}
		}
	}()
	if err := mountAll(); err != nil {
		log.errorf("%v", err)
		return statusNotStarted
	}
	// The kernel gave PID 1 the console as stdio if it could open it; open
	// it again now that devtmpfs is there, in case it could not.
	if con, err := os.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
		log.w = con
	}
	var cmdline string
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		cmdline = string(b)
	}
	log.verbose = cmdlineHas(cmdline, "unikfile.verbose")
	emulated := cmdlineHas(cmdline, guest.EmulatedParam)
	log.stepf("mounted /proc /sys /dev /tmp /run")

	data, err := os.ReadFile(guest.ConfigPath)
	if err != nil {
		log.errorf("read config: %v", err)
		return statusNotStarted
	}
	cfg, err := parseConfig(data)
	if err != nil {
		log.errorf("%v", err)
		return statusNotStarted
	}
	if emulated && len(cfg.EmulatedEnv) > 0 {
		cfg.Env = addMissing(cfg.Env, cfg.EmulatedEnv)
		log.stepf("emulated CPU: %s", strings.Join(cfg.EmulatedEnv, " "))
	}

	if cfg.Root != nil {
		if err := switchRoot(cfg.Root); err != nil {
			log.errorf("root filesystem: %v", err)
			return statusNotStarted
		}
		log.stepf("root is %s (%s, read-only, changes in memory)", cfg.Root.Device, cfg.Root.FSType)
	}

	loadModules(log, cfg.Modules)

	host := hostname(cfg.App)
	if host != "" {
		if err := syscall.Sethostname([]byte(host)); err != nil {
			log.errorf("set hostname %q: %v", host, err)
		}
	}
	ipc, err := setupNetwork(log, cfg, host, cmdline)
	if err != nil {
		// Not fatal: an app may not need the network.
		log.errorf("network: %v", err)
	}
	if err := writeFile("/etc/hosts", hostsFile(host, ipc)); err != nil {
		log.errorf("write /etc/hosts: %v", err)
	}
	return supervise(log, cfg, func() { started = true })
}

// loadModules loads the modules in order. A PCI driver whose devices are
// all absent is skipped (see modalias.go). Failures are expected for cloud
// NIC drivers on other clouds, so they are shown only when verbose; a
// missing NIC is reported later, when no interface appears.
func loadModules(log *logger, paths []string) {
	if len(paths) == 0 {
		return
	}
	devices, devErr := pciModaliases()
	var loaded int
	var skipped, failed []string
	for _, p := range paths {
		if devErr == nil {
			if data, err := os.ReadFile(p); err == nil {
				if a := pciAliases(data); len(a) > 0 && !matchesDevice(a, devices) {
					skipped = append(skipped, moduleBase(p))
					continue
				}
			}
		}
		if err := loadModule(p); err != nil {
			failed = append(failed, moduleBase(p))
			log.debugf("load module %s: %v", p, err)
			continue
		}
		loaded++
	}
	log.stepf("loaded %d kernel modules", loaded)
	if len(skipped) > 0 {
		log.debugf("skipped modules with no matching PCI device: %s", strings.Join(skipped, " "))
	}
	if len(failed) > 0 {
		log.debugf("modules that failed to load: %s", strings.Join(failed, " "))
	}
}

// moduleBase is a module's name for messages: "virtio_net" for
// /lib/modules/6.1.0/kernel/drivers/net/virtio_net.ko.
func moduleBase(p string) string {
	return strings.TrimSuffix(filepath.Base(p), ".ko")
}

// execHint explains common reasons an app fails to start.
func execHint(path string, err error) string {
	switch err {
	case syscall.ENOENT:
		if _, serr := os.Stat(path); serr == nil {
			return fmt.Sprintf("%s exists but its ELF interpreter (dynamic loader) is missing from the image: build the app static (for Go: CGO_ENABLED=0) or include its libraries", path)
		}
		return path + " is not in the image"
	case syscall.ENOEXEC:
		return path + " is not an executable for this machine (linux/amd64 ELF or a script with #!)"
	case syscall.EACCES:
		return path + " is not executable (mode lacks x?)"
	}
	return ""
}

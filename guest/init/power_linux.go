//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/unikfile/unikfile/guest"
)

// watchPowerButton opens the ACPI power button's input devices and
// returns a channel that receives once per press. It prints
// guest.PowerButtonMarker when at least one device is watched. With no
// such device (the button or evdev module missing) the channel never
// receives and the host falls back to a hard stop.
func watchPowerButton(log *logger) <-chan struct{} {
	presses := make(chan struct{}, 1)
	var files []*os.File
	// The devices appear as the button and evdev modules bind, which
	// loading them normally completes. Only when the button driver is there
	// but its device is not yet is a short wait worth it.
	files = openPowerButtons()
	if len(files) == 0 && buttonAndEvdevPresent() {
		for deadline := time.Now().Add(300 * time.Millisecond); len(files) == 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			files = openPowerButtons()
		}
	}
	if len(files) == 0 {
		log.debugf("no power button input device: stops will be hard")
		return presses
	}
	for _, f := range files {
		go func(f *os.File) {
			buf := make([]byte, inputEventSize)
			for {
				if _, err := f.Read(buf); err != nil {
					return
				}
				if isPowerPress(buf) {
					select {
					case presses <- struct{}{}:
					default:
					}
				}
			}
		}(f)
	}
	log.raw(guest.PowerButtonMarker)
	return presses
}

// openPowerButtons opens /dev/input/eventN for every input device the
// kernel names a power button.
func openPowerButtons() []*os.File {
	names, _ := filepath.Glob("/sys/class/input/event*/device/name")
	var files []*os.File
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || !strings.Contains(string(b), "Power Button") {
			continue
		}
		ev := filepath.Base(filepath.Dir(filepath.Dir(n))) // eventN
		if f, err := os.Open("/dev/input/" + ev); err == nil {
			files = append(files, f)
		}
	}
	return files
}

// buttonAndEvdevPresent reports whether both the ACPI button driver and the
// evdev input handler are in the kernel, so a power button device node is
// worth waiting for.
func buttonAndEvdevPresent() bool {
	if _, err := os.Stat("/sys/bus/acpi/drivers/button"); err != nil {
		return false
	}
	handlers, err := os.ReadFile("/proc/bus/input/handlers")
	return err == nil && strings.Contains(string(handlers), "evdev")
}

package libvirt

// Test scaffolding: a kernel+initrd image that really boots, made of the
// cached Debian kernel (unikfile kernel fetch) and a static Go /init built
// from the source below. It stands in for the real guest init and image
// builder, which this package's tests must not depend on.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/testenv"
	pack "github.com/unikfile/unikfile/stages/package"
)

// chattyInitSource is /init: a guest that prints numbered lines. On the
// kernel command line, lines=N is how many, in bursts of burst=B lines
// every pause=D; then, with exit=S, it prints the exit marker with status
// S, trail=T more lines, and powers off; without exit it waits for the
// ACPI power button (having said so with the power-button marker), then
// prints the exit marker with status 0 and powers off.
const chattyInitSource = `package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const (
	readyMarker       = %q
	exitMarker        = %q
	powerButtonMarker = %q
	sysFinitModule    = 313
)

func main() {
	syscall.Mount("proc", "/proc", "proc", 0, "")
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	params := map[string]string{}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		for _, f := range strings.Fields(string(b)) {
			k, v, _ := strings.Cut(f, "=")
			params[k] = v
		}
	}
	num := func(k string, def int) int {
		if n, err := strconv.Atoi(params[k]); err == nil {
			return n
		}
		return def
	}
	_, exits := params["exit"]
	button := make(chan struct{}, 1)
	if !exits {
		watchPowerButton(button)
		fmt.Println(powerButtonMarker)
	}
	fmt.Println(readyMarker)
	pause, err := time.ParseDuration(params["pause"])
	if err != nil {
		pause = 0
	}
	burst := num("burst", 100)
	pad := strings.Repeat("x", 80)
	lines := num("lines", 0)
	for i := 0; i < lines; i++ {
		fmt.Printf("line %%06d %%s\n", i, pad)
		if pause > 0 && (i+1)%%burst == 0 {
			time.Sleep(pause)
		}
	}
	fmt.Println("chatty: done")
	status := 0
	if exits {
		status = num("exit", 0)
	} else {
		<-button
		fmt.Println("chatty: power button")
	}
	fmt.Printf("%%s%%d\n", exitMarker, status)
	for i := 0; i < num("trail", 0); i++ {
		fmt.Printf("after %%06d %%s\n", i, pad)
	}
	os.Stdout.Sync()
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// watchPowerButton loads the ACPI button and evdev modules and sends on
// c when an input device reports KEY_POWER.
func watchPowerButton(c chan struct{}) {
	for _, m := range []string{"/lib/modules/button.ko", "/lib/modules/evdev.ko"} {
		f, err := os.Open(m)
		if err != nil {
			fmt.Println("chatty:", err)
			continue
		}
		empty := []byte{0}
		_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(&empty[0])), 0)
		if errno != 0 && errno != syscall.EEXIST {
			fmt.Println("chatty: load", m, errno)
		}
		f.Close()
	}
	var devs []string
	for i := 0; i < 100 && len(devs) == 0; i++ {
		devs, _ = filepath.Glob("/dev/input/event*")
		time.Sleep(20 * time.Millisecond)
	}
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		go func() {
			ev := make([]byte, 24) // struct input_event on amd64
			for {
				if _, err := f.Read(ev); err != nil {
					return
				}
				typ, code := uint16(ev[16])|uint16(ev[17])<<8, uint16(ev[18])|uint16(ev[19])<<8
				if typ == 1 && code == 116 && ev[20] == 1 { // EV_KEY, KEY_POWER, pressed
					select {
					case c <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
}
`

// chattyLine is how long each of the guest's numbered lines is, its
// newline included.
const chattyLine = len("line 000000 ") + 80 + 1

// testDirs are removed when the test binary ends.
var testDirs []string

var (
	chattyOnce sync.Once
	chattyDir  string
	chattyErr  error
)

// chattyImage is an image of the chatty guest with params on its kernel
// command line; it skips when there is no cached kernel.
func chattyImage(t *testing.T, params string) (*pack.Image, string) {
	t.Helper()
	vmlinuz, modules, looked := testenv.CachedKernel()
	if vmlinuz == "" {
		t.Skip("needs a cached kernel (unikfile kernel fetch, or scripts/install-deps); looked in " + looked)
	}
	chattyOnce.Do(func() { chattyDir, chattyErr = buildChatty(vmlinuz, modules) })
	if chattyErr != nil {
		t.Fatal(chattyErr)
	}
	cmdline := "console=ttyS0 panic=-1 quiet " + params
	sum := sha256.Sum256([]byte(cmdline))
	return &pack.Image{App: "chatty", Format: pack.FormatKernelInitrd, Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: cmdline, Digest: "sha256:" + hex.EncodeToString(sum[:]), MemoryMiB: 256}, chattyDir
}

// buildChatty compiles the init and writes the image folder (vmlinuz,
// initrd) into a temporary folder of the test binary's.
func buildChatty(vmlinuz, modules string) (string, error) {
	dir, err := os.MkdirTemp("", "unikfile-libvirt-chatty-")
	if err != nil {
		return "", err
	}
	testDirs = append(testDirs, dir)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	code := fmt.Sprintf(chattyInitSource, guest.ReadyMarker, guest.ExitMarker, guest.PowerButtonMarker)
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(code), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module chatty\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the test init: %v\n%s", err, out)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var cw testenv.CPIO
	for _, d := range []string{"dev", "proc", "lib", "lib/modules"} {
		cw.Dir(d)
	}
	cw.CharDev("dev/console", 5, 1)
	cw.File("init", 0o755, initBin)
	for _, m := range []string{"kernel/drivers/acpi/button.ko", "kernel/drivers/input/evdev.ko"} {
		if b, err := os.ReadFile(filepath.Join(modules, m)); err == nil {
			cw.File("lib/modules/"+filepath.Base(m), 0o644, b)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "initrd"), cw.Finish(), 0o644); err != nil {
		return "", err
	}
	return dir, os.Symlink(vmlinuz, filepath.Join(dir, "vmlinuz"))
}

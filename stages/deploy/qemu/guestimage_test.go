package qemu

// Test scaffolding: a minimal bootable kernel+initrd image built from the
// cached Debian kernel and a static Go /init compiled from the source below.
// It stands in for the real guest init and image builder, which this
// package's tests must not depend on.

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/testenv"
	pack "github.com/unikfile/unikfile/stages/package"
)

// testInitSource is /init. Its behaviour is chosen on the kernel command
// line: testmode=serve (default) listens on :8080 and answers
// "hello <testmsg>"; testmode=exit3 prints the exit marker with status 3 and
// powers off; testexit=<duration> makes a serving guest exit with status 7
// after that long.
const testInitSource = `package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const (
	readyMarker = %q
	exitMarker  = %q
	sysFinitModule = 313
)

func main() {
	syscall.Mount("proc", "/proc", "proc", 0, "")
	syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	params := map[string]string{}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		for _, f := range strings.Fields(string(b)) {
			k, v, _ := strings.Cut(f, "=")
			params[k] = v
		}
	}
	fmt.Println("testinit: started, mode", params["testmode"])
	if params["testmode"] == "exit3" {
		exit(3)
	}
	order, _ := os.ReadFile("/modules.order")
	for _, m := range strings.Fields(string(order)) {
		f, err := os.Open(m)
		if err != nil {
			fmt.Println("testinit:", err)
			continue
		}
		empty := []byte{0}
		_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(&empty[0])), 0)
		if errno != 0 && errno != syscall.EEXIST {
			fmt.Println("testinit: load", m, errno)
		}
		f.Close()
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat("/sys/class/net/eth0"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ifup("lo", nil, nil); err != nil {
		fmt.Println("testinit: lo:", err)
	}
	if err := ifup("eth0", []byte{10, 0, 2, 15}, []byte{255, 255, 255, 0}); err != nil {
		fmt.Println("testinit: eth0:", err)
	}
	l, err := net.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println("testinit: listen:", err)
		exit(1)
	}
	fmt.Println("testinit: listening on :8080, message", params["testmsg"])
	fmt.Println(readyMarker)
	if params["testmode"] == "count" {
		go func() {
			for i := 0; ; i++ {
				fmt.Printf("count %%d\n", i)
			}
		}()
	}
	if d, err := time.ParseDuration(params["testexit"]); err == nil {
		go func() {
			time.Sleep(d)
			exit(7)
		}()
	}
	http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("testinit: request", r.URL.Path)
		fmt.Fprintf(w, "hello %%s\n", params["testmsg"])
	}))
}

func exit(status int) {
	fmt.Printf("%%s%%d\n", exitMarker, status)
	os.Stdout.Sync()
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// ifreq is struct ifreq with a sockaddr_in or flags in its union.
type ifreq struct {
	name [16]byte
	data [24]byte
}

func ioctl(fd int, req uintptr, ifr *ifreq) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(ifr)))
	if errno != 0 {
		return errno
	}
	return nil
}

func ifup(name string, addr, mask []byte) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	set := func(req uintptr, ip []byte) error {
		var r ifreq
		copy(r.name[:], name)
		r.data[0] = syscall.AF_INET // sin_family, little endian
		copy(r.data[4:8], ip)
		return ioctl(fd, req, &r)
	}
	if addr != nil {
		if err := set(syscall.SIOCSIFADDR, addr); err != nil {
			return fmt.Errorf("address: %%w", err)
		}
		if err := set(syscall.SIOCSIFNETMASK, mask); err != nil {
			return fmt.Errorf("netmask: %%w", err)
		}
	}
	var r ifreq
	copy(r.name[:], name)
	if err := ioctl(fd, syscall.SIOCGIFFLAGS, &r); err != nil {
		return err
	}
	r.data[0] |= syscall.IFF_UP
	return ioctl(fd, syscall.SIOCSIFFLAGS, &r)
}
`

// testImageBuilder holds the test initramfs, built once per test binary,
// and writes images that boot it with different kernel parameters.
type testImageBuilder struct {
	dir     string
	kernel  string
	initrd  string
	version string
}

// buildTestImages compiles the init and writes the initramfs into dir.
func buildTestImages(dir string) (*testImageBuilder, error) {
	vmlinuz, modDir, looked := testenv.CachedKernel()
	if vmlinuz == "" {
		return nil, fmt.Errorf("no cached kernel in %s", looked)
	}
	src := filepath.Join(dir, "initsrc")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	code := fmt.Sprintf(testInitSource, guest.ReadyMarker, guest.ExitMarker)
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(code), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module testinit\n\ngo 1.22\n"), 0o644); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build test init: %v\n%s", err, out)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	order, err := moduleLoadOrder(modDir, "virtio_net", "virtio_pci")
	if err != nil {
		return nil, err
	}
	var cw testenv.CPIO
	for _, d := range []string{"dev", "proc", "sys", "lib", "lib/modules"} {
		cw.Dir(d)
	}
	cw.CharDev("dev/console", 5, 1)
	cw.File("init", 0o755, initBin)
	var inImage []string
	for _, m := range order {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		name := "lib/modules/" + filepath.Base(m)
		cw.File(name, 0o644, data)
		inImage = append(inImage, "/"+name)
	}
	cw.File("modules.order", 0o644, []byte(strings.Join(inImage, "\n")+"\n"))
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := os.WriteFile(initrd, cw.Finish(), 0o644); err != nil {
		return nil, err
	}
	return &testImageBuilder{dir: dir, kernel: vmlinuz, initrd: initrd, version: filepath.Base(modDir)}, nil
}

// image writes an image directory whose kernel command line carries params
// (e.g. "testmode=exit3"), and returns the image and its directory.
func (b *testImageBuilder) image(t testing.TB, name, params string) (*pack.Image, string) {
	t.Helper()
	dir := filepath.Join(b.dir, "images", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{b.kernel: "vmlinuz", b.initrd: "initrd"} {
		_ = os.Remove(filepath.Join(dir, dst))
		if err := os.Symlink(src, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
	cmdline := strings.TrimSpace("console=ttyS0 panic=-1 quiet " + params)
	sum := sha256.Sum256([]byte(b.kernel + "\x00" + b.initrd + "\x00" + cmdline))
	return &pack.Image{
		App: "hello", Base: "linux", Format: "kernel+initrd", Kernel: "vmlinuz", Initrd: "initrd",
		Cmdline: cmdline, KernelVersion: b.version, Digest: "sha256:" + hex.EncodeToString(sum[:]),
		MemoryMiB: 256, Ports: []int{8080},
	}, dir
}

// moduleLoadOrder returns the .ko files for the wanted modules and
// everything they depend on (read from each module's .modinfo depends=),
// every module after its dependencies.
func moduleLoadOrder(modDir string, wanted ...string) ([]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".ko") {
			files[modName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		path, ok := files[name]
		if !ok {
			return nil // built into the kernel
		}
		state[name] = 1
		deps, err := moduleDepends(path)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, path)
		return nil
	}
	for _, w := range wanted {
		if err := visit(modName(w)); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d != "" {
					deps = append(deps, modName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

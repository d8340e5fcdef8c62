package linux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/run"
)

// The tests in this file boot real images under QEMU (TCG: KVM is not
// assumed) and skip when qemu-system-x86_64 or a kernel is missing. They log
// the time from QEMU's start to the ready marker and to the first HTTP
// response.
//
// Seen on a 2-core machine shared with other QEMU runs (TCG, Debian's
// 6.1.0-56 cloud kernel, a static Go HTTP server, `go test -v -run
// BootQEMU` and 8 interleaved boots of each image):
//
//	initrd  size     kernel unpack  ready: min / median  first response: min / median
//	none    9.7 MB   0.09-0.18 s    3.34 s / 4.23 s      3.40 s / 4.29 s
//	gzip    4.5 MB   0.33-0.46 s    3.47 s / 4.32 s      3.59 s / 4.38 s
//
// The kernel unpacks the initramfs asynchronously, so most of gzip's cost
// hides behind other boot work; with QEMU's -icount (guest time counted in
// instructions, free of host noise) the uncompressed image is ready 1.45 s
// of guest time earlier. Hence DefaultCompression = none.

// testCacheDir is where unikfile kernel fetch puts kernels.
func testCacheDir() string {
	if d := os.Getenv("UNIKFILE_CACHE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "unikfile")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "unikfile")
}

// bootPrereqs skips the test when QEMU or a kernel is missing and returns
// the kernel, the go command and qemu.
func bootPrereqs(t *testing.T) (*Kernel, string, string) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	k, err := ResolveKernel("", testCacheDir(), os.Environ())
	var nf *KernelNotFoundError
	if errors.As(err, &nf) {
		t.Skipf("no kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k, goBin, qemu
}

// buildGoApp builds a static Go program from one main.go into dir/app.
func buildGoApp(ctx context.Context, t *testing.T, goBin, src string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module app\n\ngo 1.22\n",
		"main.go": src,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bundle := filepath.Join(dir, "bundle")
	out := filepath.Join(bundle, "app")
	_, err := run.Run(ctx, run.Cmd{
		Path: goBin,
		Args: []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, "."},
		Dir:  dir,
		Env:  run.Environ("CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}

const httpServerSrc = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from unikernel")
	})
	fmt.Println("listening on :8080 as", os.Args[0])
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

const exit3Src = `package main

import (
	"fmt"
	"os"
)

func main() {
	host, _ := os.Hostname()
	fmt.Println("batch job on", host, "done")
	os.Exit(3)
}
`

// testInit builds the guest init for a test.
func testInit(ctx context.Context, t *testing.T, goBin string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "init")
	if err := guest.Build(ctx, goBin, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// vm is a QEMU booted for a test.
type vm struct {
	cmd     *exec.Cmd
	log     string
	started time.Time
	done    chan struct{} // closed when QEMU has exited
	err     error         // from Wait, once done is closed
}

// bootQEMU boots an image directory with its console in a file; the VM is
// killed when the test ends.
func bootQEMU(t *testing.T, qemu string, img string, cmdline string, memMiB int, fwd string) *vm {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logPath := filepath.Join(t.TempDir(), "console.log")
	netdev := "user,id=n0"
	if fwd != "" {
		netdev += ",hostfwd=" + fwd
	}
	args := []string{
		"-M", "pc", "-accel", "tcg", "-m", fmt.Sprint(memMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:" + logPath,
		"-kernel", filepath.Join(img, KernelFile),
		"-initrd", filepath.Join(img, InitrdFile),
		"-append", cmdline,
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=n0,romfile=",
	}
	cmd := run.Command(ctx, qemu, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	v := &vm{cmd: cmd, log: logPath, done: make(chan struct{})}
	v.started = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", run.CommandLine(qemu, args), err)
	}
	go func() {
		v.err = cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-v.done:
		case <-time.After(10 * time.Second):
			t.Errorf("qemu (pid %d) did not stop", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("qemu: %s\nstderr: %s\nconsole:\n%s", run.CommandLine(qemu, args), stderr.String(), v.console())
		}
	})
	return v
}

// console is the console log so far, with the serial port's CRLF line ends
// as LF.
func (v *vm) console() string {
	b, _ := os.ReadFile(v.log)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// waitConsole waits for s to appear on the console and returns the time
// since QEMU started.
func (v *vm) waitConsole(t *testing.T, s string, timeout time.Duration) time.Duration {
	t.Helper()
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if strings.Contains(v.console(), s) {
			return time.Since(v.started)
		}
		select {
		case <-v.done:
			if strings.Contains(v.console(), s) {
				return time.Since(v.started)
			}
			t.Fatalf("qemu exited (%v) before %q appeared", v.err, s)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("%q did not appear on the console within %v", s, timeout)
	return 0
}

// getUntil polls url with short timeouts (QEMU's user networking accepts
// the host side of a connection before the guest listens) until a 200.
func getUntil(t *testing.T, url string, timeout time.Duration) (string, error) {
	t.Helper()
	client := &http.Client{Timeout: 250 * time.Millisecond}
	end := time.Now().Add(timeout)
	var last error
	for time.Now().Before(end) {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			err = fmt.Errorf("status %s, body %q, %v", resp.Status, body, rerr)
		}
		last = err
		time.Sleep(5 * time.Millisecond)
	}
	return "", fmt.Errorf("no answer from %s within %v: %v", url, timeout, last)
}

func TestBootQEMUHTTP(t *testing.T) {
	k, goBin, qemu := bootPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bundle := buildGoApp(ctx, t, goBin, httpServerSrc)
	initBin := testInit(ctx, t, goBin)
	extra := os.Getenv("UNIKFILE_TEST_CMDLINE") // e.g. unikfile.verbose, for measurements

	for _, compression := range []string{CompressionNone, CompressionGzip} {
		t.Run(compression, func(t *testing.T) {
			img := t.TempDir()
			im, err := Build(ctx, Input{
				BundleRoot:   bundle,
				Config:       guest.Config{App: "hello", Argv: []string{"/app"}, Ports: []int{8080}},
				Kernel:       k,
				InitBinary:   initBin,
				Compression:  compression,
				ExtraCmdline: extra,
			}, img)
			if err != nil {
				t.Fatal(err)
			}
			port := freePort(t)
			v := bootQEMU(t, qemu, img, im.Cmdline, im.MemoryMiB, fmt.Sprintf("tcp:127.0.0.1:%d-:8080", port))
			ready := v.waitConsole(t, guest.ReadyMarker, 60*time.Second)
			body, err := getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 20*time.Second)
			first := time.Since(v.started)
			if err != nil {
				t.Fatal(err)
			}
			if body != "hello from unikernel" {
				t.Errorf("body %q", body)
			}
			fi, _ := os.Stat(filepath.Join(img, InitrdFile))
			t.Logf("compression %s: initrd %d bytes; QEMU start to ready marker %v, to first HTTP response %v",
				compression, fi.Size(), ready.Round(time.Millisecond), first.Round(time.Millisecond))
			if strings.Contains(v.console(), "unikfile-init: error") {
				t.Errorf("the init printed an error:\n%s", v.console())
			}
			// QEMU's user network answers DHCP with 10.0.2.15; the init says
			// where the guest is, for providers that reach it there.
			if want := guest.AddressMarker + "10.0.2.15/24 via dhcp"; !strings.Contains(v.console(), want) {
				t.Errorf("the console lacks %q:\n%s", want, v.console())
			}
		})
	}
}

func TestBootQEMUExitStatus(t *testing.T) {
	k, goBin, qemu := bootPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bundle := buildGoApp(ctx, t, goBin, exit3Src)
	initBin := testInit(ctx, t, goBin)
	for _, tc := range []struct {
		name    string
		argv    []string
		status  string
		console []string
	}{
		{"exit 3", []string{"/app"}, "3", []string{guest.ReadyMarker, "batch job on batch done"}},
		{"not started", []string{"/missing"}, "127", []string{"unikfile-init: error: start /missing: no such file or directory: /missing is not in the image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := t.TempDir()
			im, err := Build(ctx, Input{
				BundleRoot: bundle,
				Config:     guest.Config{App: "batch", Argv: tc.argv},
				Kernel:     k,
				InitBinary: initBin,
			}, img)
			if err != nil {
				t.Fatal(err)
			}
			v := bootQEMU(t, qemu, img, im.Cmdline, im.MemoryMiB, "")
			v.waitConsole(t, guest.ExitMarker+tc.status+"\n", 60*time.Second)
			select {
			case <-v.done:
				if v.err != nil {
					t.Errorf("qemu: %v", v.err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("qemu did not exit after the app did")
			}
			t.Logf("QEMU start to exit %v", time.Since(v.started).Round(time.Millisecond))
			con := v.console()
			for _, want := range tc.console {
				if !strings.Contains(con, want) {
					t.Errorf("console lacks %q:\n%s", want, con)
				}
			}
		})
	}
}

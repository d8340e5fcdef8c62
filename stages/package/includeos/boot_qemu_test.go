package includeos

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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	sdk "github.com/unikfile/unikfile/stages/compile/includeos"
	"github.com/unikfile/unikfile/stages/deploy/console"
	pack "github.com/unikfile/unikfile/stages/package"
)

// The tests in this file compile services with the fixture's IncludeOS SDK
// through the compile stage, make images of them, and boot those under
// QEMU (TCG) as unikfile's qemu target does: -M pc, -kernel with the
// multiboot kernel, user networking with a port forward on 127.0.0.1. They
// skip without QEMU, the fixture or the SDK's compilers, and log the time
// from QEMU's start to the first HTTP response.
//
// Seen on a 2-core machine shared with other builds (load average 12-27,
// TCG): the HTTP service answered 0.96-1.6 s after QEMU started.

// fixtureSDK is the fixture's SDK, unpacked once per machine.
func fixtureSDK(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.FixtureArchive(t, "includeos", "includeos-x86_64-sdk.tar.zst"), "includeos-x86_64")
}

// fixtureService is one of the service sources of the fixture's recipe
// (hello, httpd).
func fixtureService(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testenv.FixtureArchive(t, "includeos", "includeos-recipe.tar.zst"), "recipe", "services", name)
}

func qemuPath(t *testing.T) string {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	return qemu
}

// compileService compiles the service in src for the includeos base with
// the fixture's SDK, into cs.
func compileService(ctx context.Context, t *testing.T, cs *cache.Store, name, language, src string) *compile.Result {
	t.Helper()
	app := &lang.App{Name: name, Source: src, Language: language, Base: Name, BaseSettings: &sdk.Settings{SDK: fixtureSDK(t)}}
	res, err := compile.Compile(ctx, app, compile.Options{Cache: cs, ToolVersion: "test"})
	var nf *run.NotFoundError
	if errors.As(err, &nf) {
		t.Skipf("the SDK's toolchain is not installed (scripts/install-deps --test installs it): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func newCache(t *testing.T) *cache.Store {
	t.Helper()
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// image makes the direct-boot image of a compiled bundle.
func image(t *testing.T, b *compile.Result, args []string, ports ...int) (string, *pack.Image) {
	t.Helper()
	dir := t.TempDir()
	img, err := Build(Input{
		App:     b.Manifest.App,
		Service: filepath.Join(b.Dir, compile.RootfsDir, b.Manifest.Program),
		Args:    args,
		Ports:   ports,
	}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, img
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

// vm is a QEMU booted for a test; it is stopped when the test ends.
type vm struct {
	log     string
	started time.Time
	done    chan struct{}
	err     error
}

// boot starts QEMU on the image in dir as unikfile's qemu target does,
// forwarding 127.0.0.1:port to the guest's guestPort when port is not 0.
func boot(t *testing.T, qemu, dir string, img *pack.Image, port, guestPort int) *vm {
	t.Helper()
	return startQEMU(t, qemu, img.MemoryMiB, port, guestPort, "-kernel", filepath.Join(dir, img.Kernel), "-append", img.Cmdline)
}

// bootDisk boots a raw disk as the qemu provider does (virtio, snapshot).
func bootDisk(t *testing.T, qemu, disk string, memMiB, port, guestPort int) *vm {
	t.Helper()
	return startQEMU(t, qemu, memMiB, port, guestPort, "-drive", "file="+disk+",format=raw,if=virtio,snapshot=on")
}

func startQEMU(t *testing.T, qemu string, memMiB, port, guestPort int, bootArgs ...string) *vm {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logPath := filepath.Join(t.TempDir(), "console.log")
	netdev := "user,id=n0"
	if port != 0 {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", port, guestPort)
	}
	args := []string{
		"-M", "pc", "-accel", "tcg", "-cpu", "max", "-m", fmt.Sprint(memMiB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:" + logPath,
	}
	args = append(args, bootArgs...)
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=")
	cmd := run.Command(ctx, qemu, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	v := &vm{log: logPath, done: make(chan struct{}), started: time.Now()}
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

func (v *vm) console() string {
	b, _ := os.ReadFile(v.log)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// get polls url with short timeouts (QEMU's user networking accepts the
// host side before the guest listens) until a 200, or QEMU exits.
func (v *vm) get(t *testing.T, url string, timeout time.Duration) (string, time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 250 * time.Millisecond}
	end := time.Now().Add(timeout)
	var last error
	for time.Now().Before(end) {
		select {
		case <-v.done:
			t.Fatalf("qemu exited (%v) before %s answered", v.err, url)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body), time.Since(v.started)
			}
			err = fmt.Errorf("status %s, body %q, %v", resp.Status, body, rerr)
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no answer from %s within %v: %v", url, timeout, last)
	return "", 0
}

// wait waits for QEMU to exit by itself.
func (v *vm) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-v.done:
	case <-time.After(timeout):
		t.Fatalf("the guest did not power off within %v", timeout)
	}
}

// The fixture's HTTP service, compiled by the compile stage, answers
// through QEMU's -kernel: IncludeOS takes the multiboot kernel unikfile
// writes, and its boot log shows the command line as the loader gave it
// (the kernel's path, then the app's args). A second compile of the same
// source is a cache hit.
func TestBootQEMUHTTP(t *testing.T) {
	qemu := qemuPath(t)
	ctx := t.Context()
	cs := newCache(t)
	b := compileService(ctx, t, cs, "httpd", "cpp", fixtureService(t, "httpd"))
	if again := compileService(ctx, t, cs, "httpd", "cpp", fixtureService(t, "httpd")); !again.Cached || again.Manifest.Key != b.Manifest.Key {
		t.Errorf("a second compile was not a cache hit: %+v", again)
	}
	dir, img := image(t, b, []string{"--from", "unikfile"}, 80)
	port := freePort(t)
	v := boot(t, qemu, dir, img, port, 80)
	body, took := v.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 2*time.Minute)
	if body != "Hello from IncludeOS\n" {
		t.Errorf("GET / = %q", body)
	}
	t.Logf("first response %v after QEMU started", took.Round(time.Millisecond))
	con := v.console()
	want := regexp.MustCompile(`Booted with parameters @ 0x[0-9a-f]+: ` + regexp.QuoteMeta(filepath.Join(dir, KernelFile)) + ` --from unikfile\n`)
	if !want.MatchString(con) {
		t.Errorf("the console does not show the command line %q", want)
	}
	s := &console.Scanner{Protocol: img.Console}
	s.Write([]byte(con))
	if !s.Ready() || s.Exit() != nil || s.Address() != "10.0.2.15" {
		t.Errorf("console: started %v, exit %v, address %q", s.Ready(), s.Exit(), s.Address())
	}
}

// Services that end: the fixture's C++ hello (os::shutdown) powers the
// guest off, which the console protocol reads as status 0; a C service's
// exit(3) is status 3. Both guests power off by themselves.
func TestBootQEMUExitStatus(t *testing.T) {
	qemu := qemuPath(t)
	ctx := t.Context()
	cs := newCache(t)
	exit3, err := filepath.Abs(filepath.Join("testdata", "exit3"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, language, src string
		want                int
		line                string
	}{
		{"hello", "cpp", fixtureService(t, "hello"), 0, "Hello from an IncludeOS unikernel"},
		{"exit3", "c", exit3, 3, "exit3: about to exit with status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := compileService(ctx, t, cs, tc.name, tc.language, tc.src)
			dir, img := image(t, b, nil)
			v := boot(t, qemu, dir, img, 0, 0)
			v.wait(t, 2*time.Minute)
			con := v.console()
			if !strings.Contains(con, tc.line) {
				t.Errorf("the console lacks %q", tc.line)
			}
			if st := console.LastExitWith([]byte(con), img.Console); st == nil || *st != tc.want {
				t.Errorf("exit status %v, want %d", st, tc.want)
			}
		})
	}
}

// The fixture's hello ELF, as the fixture built it, becomes a multiboot
// kernel with IncludeOS's own addresses (the header at 0x200190, loaded
// from 2 MiB).
func TestMakeKernelFixture(t *testing.T) {
	elfFile := filepath.Join(testenv.FixtureArchive(t, "includeos", "includeos-test-images.tar.zst"), "hello_includeos.elf.bin")
	k, err := MakeKernel(elfFile)
	if err != nil {
		t.Fatal(err)
	}
	if k.Offset != 0x190 || k.HeaderAddr != 0x200190 || k.LoadAddr != 0x200000 || k.EntryAddr != 0x20c740 || k.BSSEndAddr <= k.LoadEndAddr {
		t.Errorf("header %+v", k.Header)
	}
}

// A service that does not compile fails with the compiler's message.
func TestCompileError(t *testing.T) {
	src := t.TempDir()
	hello := fixtureService(t, "hello")
	for _, f := range []string{"CMakeLists.txt", "src/hello.cpp"} {
		b, err := os.ReadFile(filepath.Join(hello, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "src/hello.cpp" {
			b = append(b, []byte("\nint broken( { return 0; }\n")...)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755)
		os.WriteFile(filepath.Join(src, f), b, 0o644)
	}
	app := &lang.App{Name: "broken", Source: src, Language: "cpp", Base: Name, BaseSettings: &sdk.Settings{SDK: fixtureSDK(t)}}
	_, err := compile.Compile(t.Context(), app, compile.Options{Cache: newCache(t), ToolVersion: "test"})
	var nf *run.NotFoundError
	if errors.As(err, &nf) {
		t.Skip(err)
	}
	if err == nil || !strings.Contains(err.Error(), "IncludeOS service build (cmake --build) failed") || !strings.Contains(err.Error(), "hello.cpp:") {
		t.Fatalf("error %v", err)
	}
}

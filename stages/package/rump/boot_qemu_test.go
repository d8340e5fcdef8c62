package rump

import (
	"context"
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
	"github.com/unikfile/unikfile/stages/compile/rumprun"
	"github.com/unikfile/unikfile/stages/deploy/console"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// The tests in this file compile apps for the rump base with the compile
// stage and the fixture's Rumprun toolchain, bake them with Base.Package
// (and Base.Disk), and boot them under QEMU (TCG) as unikfile's qemu
// target does: -M pc, -nodefaults (no VGA: the console is on the serial
// port), direct kernel boot with the configuration on -append, user
// networking with a port forward on 127.0.0.1. They skip when QEMU or the
// fixture is missing, and log the time from QEMU's start to the first
// HTTP response.
//
// Seen on a 2-core machine shared with other builds (load average 20-30,
// TCG, Rumprun b04d422): C and C++ 1.6-3.4 s to the first response, the
// BIOS disk about 6 s (SYSLINUX reads the kernel through the BIOS).

type fixture struct {
	qemu, toolchain string
	env             *pack.Env
}

func prereqs(t *testing.T) *fixture {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	tc := testenv.RumprunToolchain(t)
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{qemu: qemu, toolchain: tc, env: &pack.Env{Cache: cs, ToolVersion: "test", Memo: &pack.Memo{}, Environ: []string{rumprun.Env + "=" + tc}}}
}

// app is an app of the rump base whose source is src (relative paths are
// examples/ folders).
func (f *fixture) app(t *testing.T, name, language, src string, args []string, env map[string]string) *lang.App {
	t.Helper()
	if !filepath.IsAbs(src) {
		abs, err := filepath.Abs(filepath.Join("..", "..", "..", "examples", src))
		if err != nil {
			t.Fatal(err)
		}
		src = abs
	}
	if env == nil {
		env = map[string]string{}
	}
	return &lang.App{Name: name, Source: src, Language: language, Base: Name, Args: args, Env: env, Ports: []int{8080},
		MemoryMiB: 64, MemorySet: true, BaseSettings: &Settings{Toolchain: f.toolchain}}
}

// image compiles and packages a.
func (f *fixture) image(ctx context.Context, t *testing.T, a *lang.App) *pack.Built {
	t.Helper()
	b, err := compile.Compile(ctx, a, compile.Options{Cache: f.env.Cache, ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Base{}.Package(ctx, f.env, pack.Input{App: a, Bundle: b})
	if err != nil {
		t.Fatal(err)
	}
	return img
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

// vm is a QEMU booted for a test; it is killed when the test ends.
type vm struct {
	log     string
	started time.Time
	done    chan struct{}
	err     error
}

// bootKernel boots a direct-boot image.
func (f *fixture) bootKernel(t *testing.T, img *pack.Built, port int) *vm {
	return f.boot(t, img.Image.MemoryMiB, port, "-kernel", filepath.Join(img.Dir, img.Image.Kernel), "-append", img.Image.Cmdline)
}

// boot starts QEMU with the machine settings of unikfile's qemu target,
// then extra, forwarding 127.0.0.1:port to the guest's 8080 when port is
// not 0.
func (f *fixture) boot(t *testing.T, memMiB, port int, extra ...string) *vm {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logPath := filepath.Join(t.TempDir(), "console.log")
	netdev := "user,id=n0"
	if port != 0 {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:8080", port)
	}
	args := append([]string{
		"-M", "pc", "-accel", "tcg", "-cpu", "max", "-m", fmt.Sprint(memMiB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:" + logPath,
	}, extra...)
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=")
	cmd := run.Command(ctx, f.qemu, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	v := &vm{log: logPath, done: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", run.CommandLine(f.qemu, args), err)
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
			t.Logf("qemu: %s\nstderr: %s\nconsole:\n%s", run.CommandLine(f.qemu, args), stderr.String(), v.console())
		}
	})
	return v
}

func (v *vm) console() string {
	b, _ := os.ReadFile(v.log)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// scan feeds the console to the console contract's scanner with
// Rumprun's protocol.
func (v *vm) scan() *console.Scanner {
	s := &console.Scanner{Protocol: Console()}
	s.Write([]byte(v.console()))
	s.Flush()
	return s
}

// waitFor polls the console until cond holds, or fails after timeout.
func (v *vm) waitFor(t *testing.T, what string, timeout time.Duration, cond func(*console.Scanner) bool) *console.Scanner {
	t.Helper()
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if s := v.scan(); cond(s) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, timeout)
	return nil
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

// The examples, C built by make and C++ by CMake, answer HTTP with the
// greeting from their env; the console shows Rumprun calling main under
// the app's name, which the protocol takes for the start. The same
// inputs bake the same image.
func TestBootQEMUExamples(t *testing.T) {
	f := prereqs(t)
	for _, tc := range []struct{ language, dir, want string }{
		{"c", "rump/c", "greet Rumprun with C (argv[0] c-app, 1 args)"},
		{"cpp", "rump/cpp", "greet Rumprun with C++ (request 1)"},
	} {
		t.Run(tc.language, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			name := map[string]string{"c": "C", "cpp": "C++"}[tc.language]
			a := f.app(t, tc.language+"-app", tc.language, tc.dir, []string{"8080"}, map[string]string{"GREETING": "greet Rumprun with " + name})
			img := f.image(ctx, t, a)
			if img.Image.KernelEntry != pack.KernelEntryMultiboot || img.Image.Console == nil || !img.Image.Console.Halts || img.Image.Initrd != "" {
				t.Errorf("image %+v", img.Image)
			}
			port := freePort(t)
			v := f.bootKernel(t, img, port)
			body, took := v.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 120*time.Second)
			if !strings.Contains(body, tc.want) {
				t.Errorf("answer %q, want %q", body, tc.want)
			}
			if s := v.scan(); !s.Ready() || s.Exit() != nil || !strings.Contains(v.console(), `=== calling "`+a.Name+`" main() ===`) {
				t.Errorf("console: ready %v, exit %v:\n%s", s.Ready(), s.Exit(), v.console())
			}
			t.Logf("%s: image %d KiB (%s); QEMU start to first HTTP response %v", tc.language, img.Image.Size>>10, img.Image.KernelVersion, took.Round(time.Millisecond))

			// Baked again from a fresh cache: the same bytes.
			f2 := *f
			cs, _ := cache.Open(t.TempDir())
			f2.env = &pack.Env{Cache: cs, ToolVersion: "test", Memo: &pack.Memo{}, Environ: f.env.Environ}
			if again := f2.image(ctx, t, a); again.Image.Digest != img.Image.Digest {
				t.Errorf("two bakes of the same app differ: %s, %s", img.Image.Digest, again.Image.Digest)
			}
		})
	}
}

const echoSource = `#include <stdio.h>
#include <stdlib.h>
extern char **environ;
int main(int argc, char **argv) {
	int i;
	for (i = 0; i < argc; i++)
		printf("argv[%d]=[%s]\n", i, argv[i]);
	for (i = 0; environ[i]; i++)
		printf("environ=[%s]\n", environ[i]);
	fflush(stdout);
	return 0;
}
`

// What the configuration writer puts on the command line reaches main as
// the app declared it: Rumprun's own parser reads argv[0], blanks, empty
// arguments, backslashes, double quotes, JSON punctuation and UTF-8, and
// every env variable.
func TestBootQEMUConfigReachesMain(t *testing.T) {
	f := prereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "main.c"), []byte(echoSource), 0o644)
	args := []string{"plain", "two words", "", "  ", `back\slash`, `"quoted"`, `say "hi" \now`, "{json: [1,2]}", "naïve ☃", `\`}
	env := map[string]string{"GREETING": "hello, world", "EQ": "a=b=c", "EMPTY": "", "BRACES": "{x}"}
	a := f.app(t, "echo", "c", src, args, env)
	img := f.image(ctx, t, a)
	v := f.bootKernel(t, img, 0)
	v.waitFor(t, "exit", 120*time.Second, func(s *console.Scanner) bool { return s.Exit() != nil })
	con := v.console()
	var gotArgv, gotEnv []string
	for _, l := range strings.Split(con, "\n") {
		if m := regexp.MustCompile(`^argv\[\d+\]=\[(.*)\]$`).FindStringSubmatch(l); m != nil {
			gotArgv = append(gotArgv, m[1])
		}
		if m := regexp.MustCompile(`^environ=\[(.*)\]$`).FindStringSubmatch(l); m != nil {
			gotEnv = append(gotEnv, m[1])
		}
	}
	if want := append([]string{"echo"}, args...); fmt.Sprintf("%q", gotArgv) != fmt.Sprintf("%q", want) {
		t.Errorf("argv in the guest:\n got %q\nwant %q\nconfiguration: %s", gotArgv, want, img.Image.Cmdline)
	}
	for k, val := range env {
		found := false
		for _, e := range gotEnv {
			found = found || e == k+"="+val
		}
		if !found {
			t.Errorf("the guest's environment lacks %s=%q: %q", k, val, gotEnv)
		}
	}
}

// How an app ends shows on the console as the protocol reads it: main's
// return, exit(N), and a configuration Rumprun refuses before main. The
// guest then halts with QEMU still running (Halts), which is why the qemu
// provider stops it.
func TestBootQEMUExitStatus(t *testing.T) {
	f := prereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "main.c"), []byte(`#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
	printf("batch: %s\n", argc > 1 ? argv[1] : "none");
	fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "exit") == 0) exit(4);
	if (argc > 1 && strcmp(argv[1], "return") == 0) return 3;
	if (argc > 1 && strcmp(argv[1], "negative") == 0) return -1;
	return 0;
}
`), 0o644)
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		line   string
	}{
		{"return", []string{"return"}, 3, `=== main() of "batch" returned 3 ===`},
		{"exit", []string{"exit"}, 4, "=== ERROR: _exit(4) called ==="},
		{"zero", nil, 0, "=== _exit(0) called ==="},
		{"negative", []string{"negative"}, 255, "returned -1"},
		{"bad configuration", []string{"bad"}, StatusBootFailed, "=== bootstrap failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := f.image(ctx, t, f.app(t, "batch", "c", src, tc.args, nil))
			if tc.name == "bad configuration" {
				// A network key Rumprun does not know stops the boot.
				img.Image.Cmdline = strings.Replace(img.Image.Cmdline, `"type":"inet"`, `"kind":"inet"`, 1)
			}
			v := f.bootKernel(t, img, 0)
			s := v.waitFor(t, "an exit line", 120*time.Second, func(s *console.Scanner) bool { return s.Exit() != nil })
			time.Sleep(time.Second) // Rumprun halts within milliseconds
			s = v.scan()
			if st := s.Exit(); *st != tc.status || !strings.Contains(v.console(), tc.line) {
				t.Errorf("exit status %d, want %d with %q:\n%s", *st, tc.status, tc.line, v.console())
			}
			if !strings.Contains(v.console(), "halted") {
				t.Errorf("no halt after the exit line:\n%s", v.console())
			}
			select {
			case <-v.done:
				t.Errorf("QEMU exited (%v): Rumprun halts without powering off, and Halts says so", v.err)
			default:
			}
			t.Logf("%s: QEMU start to exit line %v", tc.name, time.Since(v.started).Round(time.Millisecond))
		})
	}
}

// The BIOS disk (SYSLINUX, mboot.c32, the kernel on FAT) boots with no
// -kernel, raw and converted to qcow2 by the format stage, and gets its
// address by DHCP, which the protocol reads.
func TestBootQEMUBIOSDisk(t *testing.T) {
	f := prereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	img := f.image(ctx, t, f.app(t, "c", "c", "rump/c", []string{"8080"}, map[string]string{"GREETING": "from a BIOS disk"}))
	if _, err := (Base{}).Disk(ctx, f.env, img, pack.BootUEFI); err == nil || !strings.Contains(err.Error(), `use boot = "bios"`) {
		t.Errorf("a UEFI disk: %v", err)
	}
	raw, err := Base{}.Disk(ctx, f.env, img, pack.BootBIOS)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw.Image.Cmdline, `"method":"dhcp"`) || raw.Image.Console == nil {
		t.Errorf("disk image %+v", raw.Image)
	}
	disks := map[string]string{"raw": filepath.Join(raw.Dir, raw.Image.Disk)}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		qDir := t.TempDir()
		q, err := format.Convert(ctx, raw.Image, raw.Dir, format.QCOW2, qDir)
		if err != nil {
			t.Fatal(err)
		}
		if q.Console == nil {
			t.Errorf("the qcow2 image lost the console protocol: %+v", q)
		}
		disks["qcow2"] = filepath.Join(qDir, q.Disk)
	}
	for fmtName, p := range disks {
		t.Run(fmtName, func(t *testing.T) {
			port := freePort(t)
			v := f.boot(t, raw.Image.MemoryMiB, port, "-drive", "file="+p+",format="+fmtName+",if=virtio,snapshot=on")
			body, took := v.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 180*time.Second)
			if !strings.Contains(body, "from a BIOS disk") {
				t.Errorf("answer %q", body)
			}
			if s := v.scan(); s.Address() != "10.0.2.15" || !s.Ready() {
				t.Errorf("address by DHCP %q, ready %v:\n%s", s.Address(), s.Ready(), v.console())
			}
			t.Logf("%s BIOS disk: QEMU start to first HTTP response %v", fmtName, took.Round(time.Millisecond))
		})
	}
}

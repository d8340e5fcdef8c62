package osv

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

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// The tests in this file compile the examples for the osv base with the
// compile stage, make OSv images of them, and boot those under QEMU (TCG:
// KVM is not assumed) with the fixture's kernel, as a user's QEMU target
// would: -M pc, direct kernel boot, the root disk on virtio-blk, user
// networking with a port forward on 127.0.0.1. They skip when QEMU, the
// fixture or a language's toolchain is missing, and log the time from
// QEMU's start to the first HTTP response.
//
// Seen on a 2-core machine shared with other builds (load average 3-14,
// TCG, the fixture's OSv v0.57.0-398): C 0.55-1.4 s, Go 0.65-2.7 s,
// C++ and Rust 1-2 s, Python 7.7 s; a BIOS disk 6-7 s (the boot sector
// reads the kernel through the BIOS).

func bootPrereqs(t *testing.T) (*Kernel, string) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	k, err := ResolveKernel(testenv.Fixture(t, "osv"), "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k, qemu
}

// readyHelper builds the readiness helper for a test.
func readyHelper(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ready")
	if err := BuildReady(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	return out
}

// compileExample compiles examples/DIR for the osv base.
func compileExample(ctx context.Context, t *testing.T, language, dir string) *compile.Result {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "..", "examples", dir))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile(ctx, &lang.App{Name: dir, Source: src, Language: language, Base: "osv"}, compile.Options{Cache: cs, ToolVersion: "test"})
	var nf *run.NotFoundError
	if errors.As(err, &nf) {
		t.Skipf("no toolchain for %s: %v", language, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// image makes the direct-boot image of a compiled bundle.
func image(ctx context.Context, t *testing.T, k *Kernel, b *compile.Result, args []string, env ...string) (string, *pack.Image) {
	t.Helper()
	dir := t.TempDir()
	img, err := Build(ctx, Input{
		ReadyHelper: readyHelper(t),
		App:         b.Manifest.App,
		BundleRoot:  filepath.Join(b.Dir, compile.RootfsDir),
		Command:     Command{Argv: append(b.Manifest.Command(), args...), Env: append(append([]string(nil), b.Manifest.Env...), env...), Dir: b.Manifest.Dir},
		Kernel:      k,
		Ports:       []int{8080},
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

// vm is a QEMU booted for a test; it is killed when the test ends.
type vm struct {
	log     string
	started time.Time
	done    chan struct{}
	err     error
}

// boot starts QEMU with the machine settings of unikfile's qemu target,
// then extra (the image's own arguments), forwarding 127.0.0.1:port to the
// guest's 8080 when port is not 0.
func boot(t *testing.T, qemu string, memMiB, port int, extra ...string) *vm {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logPath := filepath.Join(t.TempDir(), "console.log")
	netdev := "user,id=n0"
	if port != 0 {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:8080", port)
	}
	args := append([]string{
		"-M", Machine, "-accel", "tcg", "-cpu", "max", "-m", fmt.Sprint(memMiB), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:" + logPath,
	}, extra...)
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

// Go, C, C++, Rust and Python, compiled for osv, each answer HTTP, with
// an environment variable holding blanks and quotes passed through OSv's
// command line.
func TestBootQEMULanguages(t *testing.T) {
	k, qemu := bootPrereqs(t)
	for _, tc := range []struct {
		language, dir string
		args          []string
		want          string
		timeout       time.Duration
	}{
		{"go", "hello", []string{"-listen", ":8080"}, "Hello from a unikernel!", 60 * time.Second},
		{"c", "c", []string{"8080"}, `greet "OSv" with C`, 60 * time.Second},
		{"cpp", "cpp", []string{"8080"}, `greet "OSv" with C++`, 60 * time.Second},
		{"rust", "rust", []string{"8080"}, `greet "OSv" with Rust`, 60 * time.Second},
		{"python", "python", []string{"8080"}, `greet "OSv" with Python`, 180 * time.Second},
	} {
		t.Run(tc.language, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			b := compileExample(ctx, t, tc.language, tc.dir)
			name := map[string]string{"c": "C", "cpp": "C++", "rust": "Rust", "python": "Python"}[tc.language]
			dir, img := image(ctx, t, k, b, tc.args, `GREETING=greet "OSv" with `+name)
			qa, err := QEMUArgs(dir, img)
			if err != nil {
				t.Fatal(err)
			}
			port := freePort(t)
			v := boot(t, qemu, img.MemoryMiB, port, qa...)
			body, took := v.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), tc.timeout)
			if !strings.Contains(body, tc.want) {
				t.Errorf("answer %q, want %q", body, tc.want)
			}
			// The helper prints its line once it has connected too.
			for end := time.Now().Add(30 * time.Second); !strings.Contains(v.console(), "\n"+ReadyMarker+"\n") && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
			con := v.console()
			want := LaunchedMarker + ReadyPath + " 8080 &! " + b.Manifest.Command()[0]
			if !strings.Contains(con, "OSv "+k.Version) || !strings.Contains(con, want) || !strings.Contains(con, "\n"+ReadyMarker+"\n") {
				t.Errorf("console lacks the banner, %q or the ready line:\n%s", want, con)
			}
			fi, _ := os.Stat(filepath.Join(dir, RootFile))
			t.Logf("%s: root disk %d KiB, %d MiB of memory; QEMU start to first HTTP response %v", tc.language, fi.Size()>>10, img.MemoryMiB, took.Round(time.Millisecond))
		})
	}
}

// The app's exit status, and a program OSv cannot load, show on the
// console, and QEMU exits.
func TestBootQEMUExitStatus(t *testing.T) {
	k, qemu := bootPrereqs(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "main.c"), []byte(`#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
	printf("batch: %s\n", argc > 1 ? argv[1] : "none");
	fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "exit") == 0) exit(3);
	if (argc > 1 && strcmp(argv[1], "return") == 0) return 4;
	return 0;
}
`), 0o644)
	cs, _ := cache.Open(t.TempDir())
	b, err := compile.Compile(ctx, &lang.App{Name: "batch", Source: src, Language: "c", Base: "osv"}, compile.Options{Cache: cs, ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		argv   []string
		status int
		line   string
	}{
		{"exit", []string{"/app/main", "exit"}, 3, "batch: exit"},
		{"return", []string{"/app/main", "return"}, 4, "batch: return"},
		{"zero", []string{"/app/main"}, 0, "batch: none"},
		{"missing", []string{"/app/main", "x"}, StatusNotStarted, "Failed to load object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img, err := Build(ctx, Input{App: "batch", BundleRoot: filepath.Join(b.Dir, compile.RootfsDir), Command: Command{Argv: tc.argv, Dir: "/app"}, Kernel: k}, dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "missing" {
				// A program that is not there, as an image whose bundle
				// lost it would have: the image's command, another disk.
				other := t.TempDir()
				os.MkdirAll(filepath.Join(other, "app"), 0o755)
				if _, err := Build(ctx, Input{App: "batch", BundleRoot: other, Command: Command{Argv: []string{"/app"}}, Kernel: k}, dir+"-x"); err == nil {
					t.Fatal("a folder as program was accepted")
				}
				img.Cmdline = strings.Replace(img.Cmdline, "/app/main x", "/app/gone", 1)
			}
			qa, err := QEMUArgs(dir, img)
			if err != nil {
				t.Fatal(err)
			}
			v := boot(t, qemu, img.MemoryMiB, 0, qa...)
			select {
			case <-v.done:
			case <-time.After(90 * time.Second):
				t.Fatalf("QEMU did not exit after the app ended:\n%s", v.console())
			}
			con := v.console()
			status, ok := exitStatus(con)
			if !ok || status != tc.status || !strings.Contains(con, tc.line) {
				t.Errorf("exit status %d (%v), want %d; console:\n%s", status, ok, tc.status, con)
			}
			t.Logf("%s: QEMU start to exit %v", tc.name, time.Since(v.started).Round(time.Millisecond))
		})
	}
}

// The single BIOS disk (loader.img, the command line, the ROFS at 2 MiB)
// boots with no -kernel, raw and converted to qcow2 by the format stage,
// and gets its address by DHCP.
func TestBootQEMUBIOSDisk(t *testing.T) {
	k, qemu := bootPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := compileExample(ctx, t, "c", "c")
	dir, img := image(ctx, t, k, b, []string{"8080"}, "GREETING=from a BIOS disk")
	rawDir := t.TempDir()
	raw, err := BuildDisk(ctx, DiskInput{ImageDir: dir, Image: img, Kernel: k}, rawDir)
	if err != nil {
		t.Fatal(err)
	}
	disks := map[string]string{"raw": filepath.Join(rawDir, raw.Disk)}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		qDir := t.TempDir()
		q, err := format.Convert(ctx, raw, rawDir, format.QCOW2, qDir)
		if err != nil {
			t.Fatal(err)
		}
		disks["qcow2"] = filepath.Join(qDir, q.Disk)
	}
	for f, p := range disks {
		t.Run(f, func(t *testing.T) {
			port := freePort(t)
			v := boot(t, qemu, raw.MemoryMiB, port, "-drive", "file="+p+",format="+f+",if=virtio,snapshot=on")
			body, took := v.get(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 120*time.Second)
			if !strings.Contains(body, "from a BIOS disk") {
				t.Errorf("answer %q", body)
			}
			if con := v.console(); !strings.Contains(con, "dhcp") || strings.Contains(con, "--ip=") {
				t.Errorf("the disk did not use DHCP:\n%s", con)
			}
			t.Logf("%s BIOS disk: QEMU start to first HTTP response %v", f, took.Round(time.Millisecond))
		})
	}
}

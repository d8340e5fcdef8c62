package mirage_test

import (
	"bytes"
	"context"
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
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/mirage"
	"github.com/unikfile/unikfile/state"
)

// The tests in this file compile the fixture's MirageOS apps with the
// compile stage and the fixture's toolchain, package them with the mirage
// base, and boot them with unikfile's qemu provider under TCG, as a
// user's qemu target would: the image's CPU model, no ACPI,
// isa-debug-exit, virtio-net with a forward on 127.0.0.1.

// app copies the fixture's app name (edited by edit, if set) and returns
// it on base mirage with the fixture's toolchain.
func app(t *testing.T, name string, args []string, ports []int, edit func(dir string)) *lang.App {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	tc := testenv.MirageToolchain(t)
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", testenv.MirageFixtureApp(t, name)+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the app: %v\n%s", err, out)
	}
	if edit != nil {
		edit(dir)
	}
	return &lang.App{Name: "web", Source: dir, Language: "ocaml", Base: mirage.Name, Args: args, Ports: ports,
		BaseSettings: &mirage.Settings{Toolchain: tc}}
}

// build compiles and packages a.
func build(t *testing.T, a *lang.App) *pack.Built {
	t.Helper()
	ctx := context.Background()
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := compile.Compile(ctx, a, compile.Options{Cache: cs, ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mirage.Base{}.Package(ctx, &pack.Env{Cache: cs, ToolVersion: "test", Memo: &pack.Memo{}}, pack.Input{App: a, Bundle: b})
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

// spec is a boot of img on a qemu target (TCG) forwarding 127.0.0.1:port
// to the guest's port 8080 when port is not 0.
func spec(t *testing.T, a *lang.App, img *pack.Built, port int) deploy.Spec {
	t.Helper()
	s := &qemu.Settings{Accel: qemu.AccelTCG, CPUs: 1, Bind: qemu.DefaultBind}
	if port != 0 {
		s.HostPorts = map[int]int{8080: port}
	}
	target := &lang.Target{Name: "dev", Provider: qemu.Name, Apps: []string{a.Name}, Settings: s}
	fw, _ := deploy.Forwards(target, a, img.Image)
	run, err := os.MkdirTemp("", "ufm") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	id := state.NewID(a.Name)
	return deploy.Spec{
		Project: "/project", Target: target, App: a, Image: img.Image, ImageDir: img.Dir, Forwards: fw,
		RunDir: filepath.Join(run, id), ID: id, Timeout: 120 * time.Second,
		Progress: func(msg string) { t.Log("progress: " + msg) },
	}
}

func TestImageOfTheTCPExample(t *testing.T) {
	a := app(t, "tcp-echo", []string{"--http-port=8080"}, []int{8080}, nil)
	img := build(t, a).Image
	if img.Base != "mirage" || img.Format != pack.FormatKernelInitrd || img.Kernel != mirage.KernelFile || img.Initrd != "" {
		t.Errorf("image %+v", img)
	}
	if img.Cmdline != "--ipv4=10.0.2.15/24 --ipv4-gateway=10.0.2.2 --http-port=8080" {
		t.Errorf("cmdline %q", img.Cmdline)
	}
	if img.MemoryMiB != mirage.DefaultMemoryMiB || img.KernelVersion != "MirageOS 3.10.8 unikernel tcpecho (Solo5 virtio)" {
		t.Errorf("memory %d, kernel version %q", img.MemoryMiB, img.KernelVersion)
	}
	if hw := img.Hardware; hw == nil || hw.CPU != "Westmere" || !hw.NoACPI || hw.DebugExit == nil {
		t.Errorf("hardware %+v", img.Hardware)
	}
	// A disk of it is refused, saying why.
	_, err := mirage.Base{}.Disk(context.Background(), nil, &pack.Built{Image: img}, pack.BootBIOS)
	if err == nil || !strings.Contains(err.Error(), "direct-boot images only") {
		t.Errorf("disk: %v", err)
	}
	// Ports without a network device are refused.
	hello := app(t, "hello", nil, []int{8080}, nil)
	cs, _ := cache.Open(t.TempDir())
	b, err := compile.Compile(context.Background(), hello, compile.Options{Cache: cs, ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mirage.Base{}.Package(context.Background(), &pack.Env{Cache: cs, ToolVersion: "test", Memo: &pack.Memo{}}, pack.Input{App: hello, Bundle: b})
	if err == nil || !strings.Contains(err.Error(), "no network device") {
		t.Errorf("ports on hello: %v", err)
	}
}

// The TCP/HTTP example answers HTTP through the qemu provider, with the
// network from its boot parameters; its console is the provider's log.
func TestBootTCPExampleAnswersHTTP(t *testing.T) {
	a := app(t, "tcp-echo", []string{"--http-port=8080"}, []int{8080}, nil)
	img := build(t, a)
	port := freePort(t)
	p := &qemu.Provider{}
	sp := spec(t, a, img, port)
	start := time.Now()
	inst, err := p.Boot(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background(), inst) })
	ready := time.Since(start)
	// Ready means the guest accepted a connection (Accepts), not that
	// QEMU took the host side of one: by then MirageOS has brought its
	// stack up and said so on the console, which QEMU writes as the
	// guest prints.
	var early bytes.Buffer
	if err := p.Logs(context.Background(), inst, false, &early); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(early.String(), "stack assembled") {
		t.Errorf("ready before the guest's network was up; console when Boot returned:\n%s", early.String())
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answered := time.Since(start)
	if strings.TrimSpace(string(body)) != "hello from a MirageOS unikernel" {
		t.Errorf("answer %q", body)
	}
	t.Logf("ready %v, first answer %v after Boot began (TCG)", ready.Round(time.Millisecond), answered.Round(time.Millisecond))
	var logs bytes.Buffer
	if err := p.Logs(context.Background(), inst, false, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Solo5: Bindings version", "listening: echo on 7, http on 8080", "http: connection from 10.0.2.2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, logs.String())
		}
	}
	var cfg qemu.Config
	if c, err := qemu.ConfigOf(inst); err != nil {
		t.Fatal(err)
	} else {
		cfg = c
	}
	args := strings.Join(cfg.Args(), " ")
	for _, want := range []string{"-M pc,acpi=off", "-cpu Westmere", "-device isa-debug-exit", "-append --ipv4=10.0.2.15/24 --ipv4-gateway=10.0.2.2 --http-port=8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu arguments lack %q: %s", want, args)
		}
	}
	if err := p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Error("the port still answers after Stop")
	}
}

// The console hello ends by itself: its exit status comes from Solo5's
// console line; with Solo5 quiet (no such line) from QEMU's status 83
// through isa-debug-exit, reported as 0; an OCaml exit 3 is 3.
func TestExitStatus(t *testing.T) {
	exit3 := func(dir string) {
		ml := filepath.Join(dir, "unikernel.ml")
		b, _ := os.ReadFile(ml)
		b = bytes.Replace(b, []byte("loop 4"), []byte("loop 1 >>= fun () -> exit 3"), 1)
		os.WriteFile(ml, b, 0o644)
	}
	for _, c := range []struct {
		name string
		args []string
		edit func(string)
		want int
		line string
	}{
		{"hello", nil, nil, 0, "Solo5: solo5_exit(0) called"},
		{"hello, Solo5 quiet", []string{"--solo5:quiet"}, nil, 0, ""},
		{"exit 3", nil, exit3, 3, "Solo5: solo5_exit(3) called"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := app(t, "hello", c.args, nil, c.edit)
			img := build(t, a)
			sp := spec(t, a, img, 0)
			var console bytes.Buffer
			sp.Attach, sp.Console = true, &console
			p := &qemu.Provider{}
			inst, err := p.Boot(context.Background(), sp)
			if err != nil {
				t.Fatalf("%v\nconsole:\n%s", err, console.String())
			}
			if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != c.want {
				t.Errorf("state %s, exit status %v, want exited with %d\nconsole:\n%s", inst.State, inst.ExitStatus, c.want, console.String())
			}
			if got := strings.Count(console.String(), "INF [application] hello"); got == 0 {
				t.Errorf("no hello on the console:\n%s", console.String())
			}
			if c.line != "" && !strings.Contains(console.String(), c.line) {
				t.Errorf("console lacks %q:\n%s", c.line, console.String())
			}
			if c.line == "" && strings.Contains(console.String(), "solo5_exit") {
				t.Errorf("Solo5 was not quiet:\n%s", console.String())
			}
		})
	}
}

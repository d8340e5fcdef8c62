package qemu

// Integration tests: they boot the real QEMU under TCG with the test image of
// guestimage_test.go. They need qemu-system-x86_64, the Go toolchain and a
// cached kernel (unikfile kernel fetch), and are skipped with -short.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

var (
	imagesOnce sync.Once
	imagesDir  string
	images     *testImageBuilder
	imagesErr  string
)

func TestMain(m *testing.M) {
	if req := os.Getenv(detachHelperEnv); req != "" {
		os.Exit(detachHelper(req))
	}
	code := m.Run()
	if imagesDir != "" {
		os.RemoveAll(imagesDir)
	}
	os.Exit(code)
}

// needQEMU skips unless QEMU and a kernel are here, and returns the image
// builder (built once for all tests).
func needQEMU(t *testing.T) *testImageBuilder {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	qemuBinary(t)
	if k, _, looked := testenv.CachedKernel(); k == "" {
		t.Skip("needs a cached kernel (unikfile kernel fetch); looked in " + looked)
	}
	imagesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "unikfile-qemu-test-")
		if err == nil {
			imagesDir = dir
			images, err = buildTestImages(dir)
		}
		if err != nil {
			imagesErr = "building the test image: " + err.Error()
		}
	})
	if images == nil {
		t.Fatal(imagesErr)
	}
	return images
}

// stateDir is a short temporary state directory (unix socket paths are
// limited to 107 bytes).
func stateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "uf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testTarget(t *testing.T) *lang.Target {
	t.Helper()
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return &lang.Target{Name: "dev", Provider: Name, Apps: []string{"hello"},
		Settings: &Settings{Accel: AccelTCG, CPUs: 1, Bind: DefaultBind, HostPorts: map[int]int{8080: port}}}
}

func testSpec(t *testing.T, dir string, target *lang.Target, img *pack.Image, imgDir string) deploy.Spec {
	id := state.NewID("hello")
	fw, _ := deploy.Forwards(target, nil, img)
	return deploy.Spec{
		Project: "/project", Target: target, Image: img, ImageDir: imgDir, Forwards: fw,
		RunDir: filepath.Join(dir, "instances", id), ID: id, Timeout: 90 * time.Second,
		Progress: func(msg string) { t.Log("progress: " + msg) },
	}
}

func httpGet(t *testing.T, port int) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET :%d: %v", port, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// qemuProcesses lists live QEMU processes whose command line mentions s.
func qemuProcesses(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(data, []byte("qemu")) || !bytes.Contains(data, []byte(s)) {
			continue
		}
		out = append(out, filepath.Base(d))
	}
	return out
}

func noQEMULeft(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := qemuProcesses(s)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU processes left for %s: %v", s, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestIntegrationQEMUBootRefreshLogsStop(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "serve", "testmsg=boot")
	target := testTarget(t)
	p := NewProvider(deploy.Env{StateDir: dir})
	spec := testSpec(t, dir, target, img, imgDir)
	readyCalls := 0
	spec.Ready = func(inst *state.Instance) error {
		readyCalls++
		if inst.State != state.Running {
			t.Errorf("Ready with state %s", inst.State)
		}
		return nil
	}
	start := time.Now()
	inst, err := p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background(), inst) })
	t.Logf("ready in %s", time.Since(start).Round(time.Millisecond))
	if readyCalls != 1 || inst.State != state.Running || inst.PID == 0 {
		t.Errorf("after Boot: ready calls %d, %+v", readyCalls, inst)
	}
	port := SettingsOf(target).HostPorts[8080]
	if len(inst.Ports) != 1 || inst.Ports[0] != (state.Port{Bind: "127.0.0.1", Host: port, Guest: 8080}) {
		t.Errorf("ports = %+v", inst.Ports)
	}
	if got := httpGet(t, port); got != "hello boot\n" {
		t.Errorf("HTTP answer %q", got)
	}
	cfg, err := ConfigOf(inst)
	if err != nil || cfg.Accel != AccelTCG || cfg.Kernel != filepath.Join(imgDir, "vmlinuz") || cfg.QMP != filepath.Join(spec.RunDir, QMPFile) {
		t.Errorf("stored config = %+v, %v", cfg, err)
	}

	// Refresh, from a record as another process would read it: running
	// stays running; starting stays starting even though the guest is
	// ready, since only the booting command may promote it (a starting
	// record whose booter died is an orphan for the next `up` to remove).
	again := *inst
	if err := p.Refresh(context.Background(), &again); err != nil || again.State != state.Running {
		t.Errorf("Refresh of a running record = %s, %v", again.State, err)
	}
	again.State = state.Starting
	if err := p.Refresh(context.Background(), &again); err != nil || again.State != state.Starting {
		t.Errorf("Refresh of a starting record = %s, %v", again.State, err)
	}

	var logs bytes.Buffer
	if err := p.Logs(context.Background(), inst, false, &logs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"testinit: listening on :8080, message boot", guest.ReadyMarker, "testinit: request /"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "\r") {
		t.Error("logs contain carriage returns")
	}

	// Follow ends when the instance stops.
	followed := make(chan error, 1)
	var followBuf bytes.Buffer
	go func() { followed <- p.Logs(context.Background(), inst, true, &followBuf) }()
	time.Sleep(300 * time.Millisecond)

	if err := p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	if inst.State != state.Stopped {
		t.Errorf("state after Stop = %s", inst.State)
	}
	noQEMULeft(t, spec.RunDir)
	select {
	case err := <-followed:
		if err != nil || !strings.Contains(followBuf.String(), guest.ReadyMarker) {
			t.Errorf("follow = %v, %q", err, followBuf.String())
		}
	case <-time.After(5 * time.Second):
		t.Error("Logs -f did not end when the instance stopped")
	}
	if err := p.Stop(context.Background(), inst); err != nil || inst.State != state.Stopped {
		t.Errorf("second Stop = %v, state %s", err, inst.State)
	}
	if err := p.Refresh(context.Background(), inst); err != nil || inst.State != state.Stopped {
		t.Errorf("Refresh after Stop = %s, %v", inst.State, err)
	}
	if err := checkFree("127.0.0.1", port); err != nil {
		t.Errorf("host port still taken after Stop: %v", err)
	}
}

func TestIntegrationQEMUExitBeforeReady(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "exit3", "testmode=exit3")
	p := NewProvider(deploy.Env{StateDir: dir})
	spec := testSpec(t, dir, testTarget(t), img, imgDir)
	spec.Ready = func(*state.Instance) error { t.Error("Ready called"); return nil }
	inst, err := p.Boot(context.Background(), spec)
	if err == nil {
		t.Fatal("Boot succeeded")
	}
	if !strings.Contains(err.Error(), "app hello exited with status 3 before it was ready") || !strings.Contains(err.Error(), "testinit: started") {
		t.Errorf("error = %v", err)
	}
	if inst == nil || inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 3 {
		t.Fatalf("instance = %+v", inst)
	}
	noQEMULeft(t, spec.RunDir)
	// The run directory stays for `unikfile logs`; Refresh agrees.
	inst.State = state.Running
	if err := p.Refresh(context.Background(), inst); err != nil || inst.State != state.Exited || *inst.ExitStatus != 3 {
		t.Errorf("Refresh = %s, %v", inst.State, err)
	}
	var logs bytes.Buffer
	if err := p.Logs(context.Background(), inst, true, &logs); err != nil || !strings.Contains(logs.String(), guest.ExitMarker+"3") {
		t.Errorf("logs = %v, %q", err, logs.String())
	}
}

func TestQEMUMissingBinary(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := &pack.Image{App: "hello", Format: "kernel+initrd", Kernel: "vmlinuz", Initrd: "initrd", Ports: []int{8080}}
	p := NewProvider(deploy.Env{StateDir: dir})
	p.Binary = "qemu-system-unikfile-test-missing"
	_, err := p.Boot(context.Background(), testSpec(t, dir, testTarget(t), img, dir))
	var nf *run.NotFoundError
	if !errors.As(err, &nf) || nf.Hint != "install it: apt-get install qemu-system-x86" {
		t.Fatalf("error = %#v, want a NotFoundError with the install hint", err)
	}
}

func TestIntegrationQEMUCancelDuringBoot(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "serve", "testmsg=cancel")
	p := NewProvider(deploy.Env{StateDir: dir})
	spec := testSpec(t, dir, testTarget(t), img, imgDir)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once QEMU is up (its pid file exists), well before the guest is ready.
		for range 200 {
			if _, err := os.Stat(filepath.Join(spec.RunDir, PIDFile)); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	inst, err := p.Boot(ctx, spec)
	if !errors.Is(err, context.Canceled) || inst != nil {
		t.Fatalf("Boot = %+v, %v; want context.Canceled", inst, err)
	}
	noQEMULeft(t, spec.RunDir)
	if _, err := os.Stat(spec.RunDir); !os.IsNotExist(err) {
		t.Errorf("run directory left: %v", err)
	}
}

func TestIntegrationQEMUAttach(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "serve-exit", "testmsg=attached testexit=2s")
	p := NewProvider(deploy.Env{StateDir: dir})
	spec := testSpec(t, dir, testTarget(t), img, imgDir)
	var console testenv.SyncBuffer
	spec.Attach, spec.Console = true, &console
	ready := false
	spec.Ready = func(*state.Instance) error { ready = true; return nil }
	inst, err := p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !ready || inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 7 {
		t.Errorf("attached Boot: ready %v, %+v", ready, inst)
	}
	for _, want := range []string{"message attached", guest.ReadyMarker, guest.ExitMarker + "7"} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, console.String())
		}
	}
	noQEMULeft(t, spec.RunDir)
}

func TestIntegrationQEMUAttachCancelStops(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "serve", "testmsg=attached")
	p := NewProvider(deploy.Env{StateDir: dir})
	spec := testSpec(t, dir, testTarget(t), img, imgDir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec.Attach = true
	spec.Ready = func(*state.Instance) error {
		time.AfterFunc(200*time.Millisecond, cancel)
		return nil
	}
	inst, err := p.Boot(ctx, spec)
	if err != nil || inst.State != state.Stopped {
		t.Fatalf("Boot = %+v, %v", inst, err)
	}
	noQEMULeft(t, spec.RunDir)
}

// detachHelperEnv makes the test binary boot one instance and exit, the way
// `unikfile up` does.
const detachHelperEnv = "UNIKFILE_QEMU_TEST_DETACH"

type detachRequest struct {
	// The target travels as its name and qemu settings (Target.Settings
	// is an interface, which JSON cannot decode).
	TargetName string
	Settings   *Settings
	Image      *pack.Image
	ImageDir   string
	RunDir     string
	ID         string
	State      string
}

func detachHelper(req string) int {
	var r detachRequest
	if err := json.Unmarshal([]byte(req), &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	target := &lang.Target{Name: r.TargetName, Provider: Name, Settings: r.Settings}
	fw, _ := deploy.Forwards(target, nil, r.Image)
	spec := deploy.Spec{Project: "/project", Target: target, Image: r.Image, ImageDir: r.ImageDir, Forwards: fw, RunDir: r.RunDir, ID: r.ID}
	inst, err := NewProvider(deploy.Env{StateDir: r.State}).Boot(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(inst); err != nil {
		return 1
	}
	return 0
}

// A detached instance outlives the process that booted it, and another
// process can refresh and stop it.
func TestIntegrationQEMUDetachedOutlivesBooter(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "serve", "testmsg=detached")
	target := testTarget(t)
	spec := testSpec(t, dir, target, img, imgDir)
	req, err := json.Marshal(detachRequest{TargetName: target.Name, Settings: SettingsOf(target), Image: img, ImageDir: imgDir, RunDir: spec.RunDir, ID: spec.ID, State: dir})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), detachHelperEnv+"="+string(req))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("booter: %v\n%s", err, stderr.String())
	}
	var inst state.Instance
	if err := json.Unmarshal(out, &inst); err != nil {
		t.Fatal(err)
	}
	p := NewProvider(deploy.Env{StateDir: dir})
	t.Cleanup(func() { _ = p.Stop(context.Background(), &inst) })
	if err := p.Refresh(context.Background(), &inst); err != nil || inst.State != state.Running {
		t.Fatalf("after the booter exited: %s, %v", inst.State, err)
	}
	if got := httpGet(t, SettingsOf(target).HostPorts[8080]); got != "hello detached\n" {
		t.Errorf("HTTP answer %q", got)
	}
	if err := p.Stop(context.Background(), &inst); err != nil {
		t.Fatal(err)
	}
	noQEMULeft(t, spec.RunDir)
}

package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// connectHelperEnv makes the test binary connect to the URI it names and
// print the error: TestPermissionDenied runs it as another user.
const connectHelperEnv = "UNIKFILE_TEST_LIBVIRT_CONNECT"

func TestMain(m *testing.M) {
	if uri := os.Getenv(connectHelperEnv); uri != "" {
		c, err := connect(context.Background(), uri)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	code := m.Run()
	for _, d := range testDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func startLibvirt(t *testing.T, opts testenv.LibvirtOptions) *testenv.Libvirt {
	t.Helper()
	if m := testenv.LibvirtMissing(); m != "" {
		t.Skip(m)
	}
	lv, err := testenv.StartLibvirtWith(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lv.Stop)
	return lv
}

// fakeImage is a kernel+initrd image of random bytes: enough to upload,
// not to boot.
func fakeImage(t *testing.T) (*pack.Image, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"kernel", "initrd"} {
		b := make([]byte, 3<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &pack.Image{App: "api", Format: pack.FormatKernelInitrd, Kernel: "kernel", Initrd: "initrd",
		Cmdline: "console=ttyS0", Digest: "0123", MemoryMiB: 128, Ports: []int{8080}}, dir
}

func fakeSpec(t *testing.T, uri, pool string, s *Settings) deploy.Spec {
	img, dir := fakeImage(t)
	if s == nil {
		s = DefaultSettings()
	}
	s.URI, s.Pool, s.Accel = uri, pool, AccelTCG
	tg := &lang.Target{Name: "lab", Provider: Name, Settings: s, Apps: []string{"api"}}
	fw, _ := s.Forwards(img.Ports)
	for i := range fw {
		port, err := tempPort("127.0.0.1", true)
		if err != nil {
			t.Fatal(err)
		}
		fw[i].Host = port
	}
	id := "api-" + fmt.Sprint(time.Now().UnixNano()%1e10)
	return deploy.Spec{Project: t.TempDir(), Target: tg, Image: img, ImageDir: dir, Forwards: fw,
		RunDir: filepath.Join(t.TempDir(), id), ID: id, Timeout: time.Minute}
}

func nothingLeft(t *testing.T, lv *testenv.Libvirt, spec deploy.Spec) {
	t.Helper()
	ctx := context.Background()
	doms, err := lv.Domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := lv.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 0 || len(vols) != 0 {
		t.Errorf("left behind: domains %v, volumes %v", doms, vols)
	}
	if _, err := os.Stat(spec.RunDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s left behind (%v)", spec.RunDir, err)
	}
}

// A boot that fails after its upload (injected), after defining the
// domain (injected), or because QEMU cannot load the kernel (real) leaves
// no domain and no volume, the uploaded ones included; and a retry goes
// as far again.
func TestIntegrationFailuresLeaveNothing(t *testing.T) {
	lv := startLibvirt(t, testenv.LibvirtOptions{})
	for _, step := range []string{"upload", "define", ""} {
		name := step
		if name == "" {
			name = "unbootable kernel"
		}
		t.Run(name, func(t *testing.T) {
			p := NewProvider(deploy.Env{StateDir: t.TempDir()})
			injected := errors.New("injected failure after " + step)
			p.failAfter = func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			var said []string
			for try := 0; try < 2; try++ {
				spec := fakeSpec(t, lv.URI, lv.Pool, nil)
				spec.Progress = func(m string) { said = append(said, m) }
				inst, err := p.Boot(context.Background(), spec)
				if err == nil || inst != nil {
					t.Fatalf("boot: %v, %v", inst, err)
				}
				if step != "" && !errors.Is(err, injected) {
					t.Fatalf("boot failed, but not where it was made to: %v", err)
				}
				if step == "" && !strings.Contains(err.Error(), "start domain") {
					t.Errorf("an unbootable kernel fails with %v", err)
				}
				nothingLeft(t, lv, spec)
			}
			if !strings.Contains(strings.Join(said, "\n"), "uploading kernel (3.0 MiB) into pool "+lv.Pool) {
				t.Errorf("no upload progress: %q", said)
			}
		})
	}
}

// The errors that say what to do.
func TestIntegrationConnectErrors(t *testing.T) {
	lv := startLibvirt(t, testenv.LibvirtOptions{})
	ctx := context.Background()
	p := NewProvider(deploy.Env{StateDir: t.TempDir()})
	boot := func(s *Settings, uri, pool string) error {
		spec := fakeSpec(t, uri, pool, s)
		inst, err := p.Boot(ctx, spec)
		if err == nil || inst != nil {
			t.Fatalf("boot: %v, %v", inst, err)
		}
		nothingLeft(t, lv, spec)
		return err
	}
	for _, c := range []struct {
		name, uri, pool string
		s               *Settings
		want            string
	}{
		{"no libvirtd", "qemu:///system?socket=" + filepath.Join(t.TempDir(), "sock"), lv.Pool, nil, "no libvirtd answers at"},
		{"no libvirtd on tcp", "qemu+tcp://127.0.0.1:1/system", lv.Pool, nil, "no libvirtd answers at qemu+tcp://127.0.0.1:1/system"},
		{"no pool", lv.URI, "nosuch", nil, `has no storage pool "nosuch"; create one (virsh pool-define-as`},
		{"no network", lv.URI, lv.Pool, &Settings{Network: "nosuch", CPUs: 1}, `has no network "nosuch"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := boot(c.s, c.uri, c.pool); !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want %q", err, c.want)
			}
		})
	}

	t.Run("permission denied", func(t *testing.T) {
		// The test binary, copied where another user can run it, connects
		// as nobody.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "unikfile-libvirt-helper-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		_ = os.Chmod(dir, 0o755)
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "helper")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), connectHelperEnv+"="+lv.URI)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied on libvirt's socket "+lv.Socket) || !strings.Contains(string(out), "usermod -aG libvirt") {
			t.Errorf("as nobody: %v\n%s", err, out)
		}
	})

	t.Run("no QEMU driver", func(t *testing.T) {
		bare := startLibvirt(t, testenv.LibvirtOptions{WithoutQEMU: true})
		_, err := connect(ctx, bare.URI)
		if err == nil || !strings.Contains(err.Error(), "has no QEMU driver") || !strings.Contains(err.Error(), "apt-get install libvirt-daemon-driver-qemu") {
			t.Errorf("connect to a libvirtd without the QEMU driver: %v", err)
		}
	})
}

// Console rotation: virtlogd rotates the console log at its max_size
// (<log>.0, .1, ... the oldest dropped past max_backups); logs reads the
// generations it kept, oldest first, and follows across rotations; the
// exit status and the power-button marker are found in rotated
// generations; the copy kept in the run directory is bounded; and removal
// leaves no generation in the pool.
func TestIntegrationConsoleRotation(t *testing.T) {
	const maxSize, backups = 16 << 10, 2
	lv := startLibvirt(t, testenv.LibvirtOptions{ConsoleMaxSize: maxSize, ConsoleMaxBackups: backups})
	ctx := context.Background()
	p := NewProvider(deploy.Env{StateDir: t.TempDir()})
	p.Poll = 50 * time.Millisecond
	p.ConsoleMax = maxSize
	// About 280 KiB of numbered lines, at about 30 KiB/s under TCG: many
	// rotations, each poll of logs -f sees less than a generation.
	const lines = 3000
	boot := func(t *testing.T, params string) *state.Instance {
		img, dir := chattyImage(t, params)
		s := DefaultSettings()
		s.URI, s.Pool, s.Accel = lv.URI, lv.Pool, AccelTCG
		tg := &lang.Target{Name: "lab", Provider: Name, Settings: s, Apps: []string{"chatty"}}
		id := "chatty-" + fmt.Sprint(time.Now().UnixNano()%1e10)
		spec := deploy.Spec{Project: t.TempDir(), Target: tg, Image: img, ImageDir: dir,
			RunDir: filepath.Join(t.TempDir(), id), ID: id, Timeout: 3 * time.Minute,
			Progress: func(m string) { t.Log("progress: " + m) }}
		inst, err := p.Boot(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	// consoleFiles are the console's files in the pool's folder, by
	// suffix ("" the current one, ".0" the newest rotated generation).
	consoleFiles := func(t *testing.T, inst *state.Instance) map[string][]byte {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(lv.PoolDir, consoleVolume(inst.ID)+"*"))
		out := map[string][]byte{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if errors.Is(err, os.ErrNotExist) {
				continue // rotated away meanwhile
			}
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(filepath.Base(f), consoleVolume(inst.ID))] = b
		}
		return out
	}
	bounded := func(t *testing.T, inst *state.Instance) {
		t.Helper()
		files := consoleFiles(t, inst)
		for name, b := range files {
			if len(b) > maxSize {
				t.Errorf("console file %q has %d bytes, more than virtlogd's max_size %d", name, len(b), maxSize)
			}
		}
		if len(files) != backups+1 {
			t.Errorf("the console has files %v, not the current one and %d rotated generations", keys(files), backups)
		}
	}
	removed := func(t *testing.T, inst *state.Instance) {
		t.Helper()
		doms, err := lv.Domains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vols, err := lv.Volumes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(doms) != 0 || len(vols) != 0 {
			t.Errorf("left behind: domains %v, volumes %v", doms, vols)
		}
		if files := consoleFiles(t, inst); len(files) != 0 {
			t.Errorf("console files left in the pool's folder: %v", keys(files))
		}
		var kept int
		for _, f := range []string{ConsoleFile, deploy.RotatedConsole(ConsoleFile)} {
			if fi, err := os.Stat(filepath.Join(inst.RunDir, f)); err == nil {
				kept += int(fi.Size())
			}
		}
		if kept == 0 || kept > 2*maxSize+chattyLine {
			t.Errorf("the console kept in the run directory has %d bytes; want some, and at most about twice %d", kept, maxSize)
		}
	}
	logs := func(t *testing.T, inst *state.Instance) string {
		t.Helper()
		var b strings.Builder
		if err := p.Logs(ctx, inst, false, &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	t.Run("exit status in a rotated generation", func(t *testing.T) {
		// The exit marker is followed by more than max_size of lines.
		inst := boot(t, fmt.Sprintf("lines=%d burst=80 pause=100ms exit=5 trail=250", lines))
		deadline := time.Now().Add(3 * time.Minute)
		for inst.Alive() && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			if err := p.Refresh(ctx, inst); err != nil {
				t.Fatal(err)
			}
		}
		if files := consoleFiles(t, inst); bytes.Contains(files[""], []byte(guest.ExitMarker)) {
			t.Fatalf("the exit marker is in the current console file: the test does not test a rotated one")
		}
		if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 5 {
			t.Errorf("after the guest exited: state %s, status %v; want exited with 5", inst.State, fmtStatus(inst.ExitStatus))
		}
		bounded(t, inst)
		out := logs(t, inst)
		first := numbered(t, out, "line ", -1, lines)
		if first == 0 {
			t.Errorf("logs begins with line 0: virtlogd should have dropped the oldest generations")
		}
		numbered(t, out, "after ", 0, 250)
		if !strings.Contains(out, "chatty: done\n"+guest.ExitMarker+"5\nafter 000000") {
			t.Errorf("logs lacks the exit marker between the lines:\n%s", out)
		}
		if err := p.Stop(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 5 {
			t.Errorf("after stop: state %s, status %v; want exited with 5", inst.State, fmtStatus(inst.ExitStatus))
		}
		removed(t, inst)
		// logs and the exit status after removal read the kept copy: the
		// end of what logs printed before.
		after := logs(t, inst)
		if len(after) == 0 || !strings.HasSuffix(out, after) || !strings.Contains(after, guest.ExitMarker+"5\n") {
			t.Errorf("logs after removal is not the end of the console with the exit marker (%d bytes):\n%s", len(after), after)
		}
		inst.State, inst.ExitStatus = state.Running, nil
		if err := p.Refresh(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 5 {
			t.Errorf("refreshed after removal: state %s, status %v; want exited with 5", inst.State, fmtStatus(inst.ExitStatus))
		}
	})

	t.Run("follow and power button", func(t *testing.T) {
		// The power-button marker is printed first and rotated out long
		// before the stop.
		inst := boot(t, fmt.Sprintf("lines=%d burst=40 pause=100ms", lines))
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var followed testenv.SyncBuffer
		done := make(chan error, 1)
		go func() { done <- p.Logs(fctx, inst, true, &followed) }()
		// Until the guest is done, then until logs -f has caught up.
		deadline := time.Now().Add(3 * time.Minute)
		for !bytes.Contains(consoleFiles(t, inst)[""], []byte("chatty: done")) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		deadline = time.Now().Add(10 * time.Second)
		for !strings.Contains(followed.String(), "chatty: done\n") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("logs -f: %v", err)
		}
		out := followed.String()
		if first := numbered(t, out, "line ", 0, lines); first != 0 {
			t.Errorf("logs -f begins at line %d, not 0", first)
		}
		bounded(t, inst)
		if err := p.Stop(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 0 {
			t.Errorf("after stop: state %s, status %v; want exited with 0 (the power button pressed)", inst.State, fmtStatus(inst.ExitStatus))
		}
		removed(t, inst)
		if after := logs(t, inst); !strings.Contains(after, "chatty: power button\n"+guest.ExitMarker+"0\n") {
			t.Errorf("the console kept after removal lacks the guest's answer to the power button:\n%s", after)
		}
	})
}

// numbered checks that the lines of out that start with prefix and a
// number are consecutive, each once, ending at n-1, and starting at first
// (-1: anywhere); it returns the first number.
func numbered(t *testing.T, out, prefix string, first, n int) int {
	t.Helper()
	next, start := -1, -1
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(rest, "%d", &i); err != nil {
			continue
		}
		switch {
		case start < 0:
			start = i
		case i != next:
			t.Errorf("%q%06d follows %q%06d", prefix, i, prefix, next-1)
			return start
		}
		next = i + 1
	}
	if start < 0 || next != n || (first >= 0 && start != first) {
		t.Errorf("lines %q run from %d to %d; want %d to %d:\n%s", prefix, start, next-1, max(first, 0), n-1, tail(out, 2000))
	}
	return start
}

func tail(s string, n int) string { return s[len(s)-min(n, len(s)):] }

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func fmtStatus(p *int) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/stages/package/linux"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

var (
	binary string // the unikfile binary under test
	kernel string // a vmlinuz for UNIKFILE_KERNEL
	// kbuildDir is where minimal kernels are built and kept: the
	// machine's, so that every test's temporary cache shares the kernels
	// scripts/install-deps --test built.
	kbuildDir string
	// sharedCache holds the guest init and bundles across tests, so only the
	// first test pays for building them; tests that check caching use their own.
	sharedCache string
)

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "unikfile-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(tmp, "unikfile")
	// Built as scripts/install-deps builds it: static, without cgo.
	build := exec.Command("go", "build", "-o", binary, "../cmd/unikfile")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build unikfile: %v\n%s", err, out)
		os.Exit(1)
	}
	kernel = findKernel()
	kbuildDir = kbuild.Dir(userCacheDir(), os.Environ())
	sharedCache = filepath.Join(tmp, "cache")
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// findKernel finds the kernel the way unikfile does without a Unikfile
// setting: UNIKFILE_KERNEL, then the newest in the user's cache.
func findKernel() string {
	k, err := linux.ResolveKernel("", userCacheDir(), os.Environ())
	if err != nil {
		return ""
	}
	return k.Path
}

// userCacheDir is unikfile's cache of the user running the tests.
func userCacheDir() string {
	if base := os.Getenv("UNIKFILE_CACHE_DIR"); base != "" {
		return base
	}
	c, _ := os.UserCacheDir()
	return filepath.Join(c, "unikfile")
}

// project is a temporary project directory with its own state.
type project struct {
	t        *testing.T
	dir      string
	cacheDir string
	stateDir string
	env      []string // extra environment
}

func needBoot(t *testing.T) {
	t.Helper()
	if kernel == "" {
		t.Fatal("no kernel: run scripts/install-deps (it extracts Debian's cloud kernel into the cache)")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing: run scripts/install-deps")
	}
}

func newProject(t *testing.T, files map[string]string) *project {
	t.Helper()
	p := &project{t: t, dir: t.TempDir(), cacheDir: sharedCache, stateDir: t.TempDir()}
	for name, content := range files {
		p.write(name, content)
	}
	t.Cleanup(func() {
		// Leave nothing running, whatever the test did.
		r := p.run("down")
		if r.code != 0 {
			t.Logf("cleanup down: %s", r.stderr)
		}
		for _, pid := range qemuPIDs(p.stateDir) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("QEMU pid %d of this test was still running after down", pid)
		}
	})
	return p
}

func (p *project) write(name, content string) {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

func (p *project) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(),
		"UNIKFILE_CACHE_DIR="+p.cacheDir,
		"UNIKFILE_STATE_DIR="+p.stateDir,
		"UNIKFILE_KERNEL="+kernel,
		"UNIKFILE_KBUILD_DIR="+kbuildDir,
		"TERM=dumb",
	)
	cmd.Env = append(cmd.Env, p.env...)
	return cmd
}

func (p *project) run(args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := p.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("unikfile %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs unikfile and fails the test unless it exits 0.
func (p *project) ok(args ...string) result {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("unikfile %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

type instance struct {
	ID          string `json:"id"`
	Target      string `json:"target"`
	App         string `json:"app"`
	ImageDigest string `json:"image_digest"`
	State       string `json:"state"`
	ExitStatus  *int   `json:"exit_status"`
	PID         int    `json:"pid"`
	Ports       []struct {
		Bind  string `json:"bind"`
		Host  int    `json:"host"`
		Guest int    `json:"guest"`
	} `json:"ports"`
}

func (p *project) ps() []instance {
	p.t.Helper()
	r := p.ok("ps", "--json")
	var out []instance
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		p.t.Fatalf("ps --json: %v\n%s", err, r.stdout)
	}
	return out
}

// freePort is a host port nothing listens on; freePorts(t, n) the first
// of n such ports in a row (the examples forward var.port, var.port + 1,
// ...). They are chosen below Linux's ephemeral range (32768-60999),
// from which the kernel gives outgoing connections their local ports: a
// port from there (what listening on port 0 gives) can be taken by any
// test's connection between the check and the boot.
func freePort(t *testing.T) int { return freePorts(t, 1) }

func freePorts(t *testing.T, n int) int {
	t.Helper()
	const low, high = 20000, 32768
	for try := 0; try < 200; try++ {
		base := low + rand.IntN(high-low-n)
		var ls []net.Listener
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return base
		}
	}
	t.Fatalf("no %d free ports in a row in %d-%d", n, low, high)
	return 0
}

// get fetches a URL with short timeouts and a few retries.
func get(t *testing.T, port int) string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	var lastErr error
	for i := 0; i < 5; i++ {
		resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return string(b)
			}
			lastErr = fmt.Errorf("status %d, %v", resp.StatusCode, err)
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET 127.0.0.1:%d: %v", port, lastErr)
	return ""
}

// qemuPIDs lists QEMU processes whose command line mentions dir.
func qemuPIDs(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cl := string(b)
		if strings.Contains(cl, "qemu-system") && strings.Contains(cl, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// helloSource is a Go HTTP server answering msg on port 8080.
func helloSource(msg string) string { return serverSource(msg, 8080) }

// serverSource is a Go HTTP server answering msg on port.
func serverSource(msg string, port int) string {
	return `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, ` + strconv.Quote(msg) + `) })
	fmt.Println("serving on :` + strconv.Itoa(port) + `")
	if err := http.ListenAndServe(":` + strconv.Itoa(port) + `", nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`
}

const goMod = "module example.com/app\n\ngo 1.22\n"

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// qemuApp is a Unikfile with one Go app "a" listening on guest port 8080,
// served on host port under TCG by target "dev"; attrs are extra lines of
// the app block.
func qemuApp(port int, attrs string) string {
	return fmt.Sprintf(`app "a" {
  language = "go"
  ports    = [8080]
  %s
}
target "dev" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d }
  }
}
`, attrs, port)
}

// running is a unikfile command in its own process group whose stderr the
// test reads line by line, to act at a given moment of its work.
type running struct {
	t      *testing.T
	cmd    *exec.Cmd
	sc     *bufio.Scanner
	seen   []string
	cancel context.CancelFunc
}

func (p *project) start(args ...string) *running {
	p.t.Helper()
	r := p.startFor(3*time.Minute, args...)
	p.t.Cleanup(r.cancel)
	return r
}

// startFor starts unikfile with args in its own process group, killed
// after limit, with its stderr to be read line by line.
func (p *project) startFor(limit time.Duration, args ...string) *running {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := p.command(ctx, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		p.t.Fatal(err)
	}
	return &running{t: p.t, cmd: cmd, sc: bufio.NewScanner(stderr), cancel: cancel}
}

// waitLine reads stderr until a line starts with prefix.
func (r *running) waitLine(prefix string) {
	for r.sc.Scan() {
		r.seen = append(r.seen, r.sc.Text())
		if strings.HasPrefix(r.sc.Text(), prefix) {
			return
		}
	}
	r.t.Fatalf("unikfile ended before printing %q:\n%s", prefix, r.output())
}

// signal sends sig to the command, or with group to its whole process group.
func (r *running) signal(sig syscall.Signal, group bool) {
	pid := r.cmd.Process.Pid
	if group {
		pid = -pid
	}
	syscall.Kill(pid, sig)
}

// wait reads the rest of stderr and waits for the command to end.
func (r *running) wait() *os.ProcessState {
	for r.sc.Scan() {
		r.seen = append(r.seen, r.sc.Text())
	}
	r.cmd.Wait()
	r.cancel()
	return r.cmd.ProcessState
}

func (r *running) output() string { return strings.Join(r.seen, "\n") }

// waitQEMUs waits until at least n QEMU processes of the project run.
func (p *project) waitQEMUs(n int) bool {
	deadline := time.Now().Add(30 * time.Second)
	for len(qemuPIDs(p.stateDir)) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return len(qemuPIDs(p.stateDir)) >= n
}

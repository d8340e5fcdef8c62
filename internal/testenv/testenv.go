// Package testenv starts the real daemons that BuildKit tests need — a
// buildkitd (the version pinned in go.mod, with runc from Debian) and an OCI
// registry (distribution/v3) — in temporary folders, and builds an offline
// Go builder image from the host's Go toolchain and Debian's static
// busybox; and libvirtd with virtlogd (Debian's, libvirt.go) for the libvirt
// provider. It is for tests and benchmarks only; whoever starts a daemon
// stops it.
package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
)

// Missing says why the daemons cannot run here ("" when they can).
func Missing() string {
	if os.Geteuid() != 0 {
		return "buildkitd needs root (its OCI worker runs runc): run the tests as root"
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "runc is missing: run scripts/install-deps (apt-get install runc)"
	}
	if _, err := busyboxPath(); err != nil {
		return "Debian's static busybox is missing: run scripts/install-deps (apt-get install busybox-static)"
	}
	return ""
}

// busyboxPath finds Debian's static busybox (package busybox-static).
func busyboxPath() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// Tool returns the path of a tool pinned in go.mod's tool directives,
// building it into Go's cache when needed.
func Tool(name string) (string, error) {
	out, err := exec.Command("go", "tool", "-n", name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go tool -n %s: %v\n%s", name, err, ee.Stderr)
		}
		return "", fmt.Errorf("go tool -n %s: %v", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Daemon is a started background process.
type Daemon struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func start(bin string, args []string, logPath string) (*Daemon, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	d := &Daemon{cmd: cmd, log: lf, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	return d, nil
}

// Stop sends SIGTERM and, after 10 s, SIGKILL to the daemon's group.
func (d *Daemon) Stop() {
	if d == nil {
		return
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	d.log.Close()
}

func (d *Daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Registry is a distribution/v3 registry on 127.0.0.1.
type Registry struct {
	*Daemon
	Addr string // host:port
}

// StartRegistry starts a registry storing its blobs under dir.
func StartRegistry(dir string) (*Registry, error) {
	return startRegistry(dir, filepath.Join(dir, "data"), false)
}

// startRegistry starts a registry with its configuration and log in dir
// serving the blobs under data, read-only when readonly (several
// registries may then serve one folder).
func startRegistry(dir, data string, readonly bool) (*Registry, error) {
	bin, err := Tool("registry")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: %v\nhttp:\n  addr: %s\n",
		data, readonly, addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	d, err := start(bin, []string{"serve", cfgPath}, logPath)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !d.exited() {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return &Registry{Daemon: d, Addr: addr}, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Stop()
	return nil, fmt.Errorf("registry did not answer on %s:\n%s", addr, logTail(logPath))
}

// BuildKit is a buildkitd with the OCI worker, listening on a unix socket.
type BuildKit struct {
	*Daemon
	Addr string // unix:///...
	Root string // its state
	dir  string
}

// StartBuildKit starts buildkitd with its state in dir/root and its socket
// in dir.
func StartBuildKit(dir string) (*BuildKit, error) {
	sock := filepath.Join(dir, "buildkitd.sock")
	os.Remove(sock)
	return StartBuildKitAt(dir, "unix://"+sock, nil, nil)
}

// StartBuildKitAt starts buildkitd listening on addr with extra arguments
// (e.g. TLS files); ping checks that it answers (nil: a plain client).
func StartBuildKitAt(dir, addr string, extra []string, ping func(addr string) error) (*BuildKit, error) {
	bin, err := Tool("buildkitd")
	if err != nil {
		return nil, err
	}
	if ping == nil {
		ping = plainPing
	}
	root := filepath.Join(dir, "root")
	logPath := filepath.Join(dir, "buildkitd.log")
	args := append([]string{"--oci-worker=true", "--containerd-worker=false", "--root", root, "--addr", addr}, extra...)
	d, err := start(bin, args, logPath)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !d.exited() {
		if err := ping(addr); err == nil {
			return &BuildKit{Daemon: d, Addr: addr, Root: root, dir: dir}, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.Stop()
	return nil, fmt.Errorf("buildkitd did not answer on %s:\n%s", addr, logTail(logPath))
}

// Restart stops buildkitd, removes its whole state (a new machine, as far
// as BuildKit's caches go) and starts it again on the same address.
func (b *BuildKit) Restart() (*BuildKit, error) {
	b.Stop()
	if err := os.RemoveAll(b.Root); err != nil {
		return nil, err
	}
	return StartBuildKit(b.dir)
}

func plainPing(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	w, err := c.ListWorkers(ctx)
	if err == nil && len(w) == 0 {
		err = errors.New("no workers yet")
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// GoVersion is the host toolchain's version without "go", e.g. "1.26.8".
func GoVersion() string { return strings.TrimPrefix(runtime.Version(), "go") }

// PushGoBuilder builds a Go builder image offline — Debian's static
// busybox plus the host's GOROOT at /usr/local/go, GOTOOLCHAIN=local — and
// pushes it as ref to an insecure registry through buildkitd at addr.
func PushGoBuilder(ctx context.Context, addr, ref string) error {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	c, err := client.New(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	busybox, err := busyboxPath()
	if err != nil {
		return fmt.Errorf("busybox: %w (apt-get install busybox-static)", err)
	}
	bbFS, err := fsutil.NewFS(filepath.Dir(busybox))
	if err != nil {
		return err
	}
	goFS, err := fsutil.NewFS(strings.TrimSpace(string(goroot)))
	if err != nil {
		return err
	}
	bb := llb.Local("busybox", llb.FollowPaths([]string{filepath.Base(busybox)}))
	gor := llb.Local("goroot", llb.ExcludePatterns([]string{"test", "api", "doc", "misc", "pkg/*_race", "pkg/obj"}))
	st := llb.Scratch().
		File(llb.Copy(bb, filepath.Base(busybox), "/bin/busybox", &llb.CopyInfo{CreateDestPath: true})).
		Run(llb.Args([]string{"/bin/busybox", "--install", "-s", "/bin"})).Root().
		File(llb.Mkdir("/tmp", 0o1777).Mkdir("/root", 0o700)).
		File(llb.Copy(gor, "/", "/usr/local/go", &llb.CopyInfo{CreateDestPath: true, CopyDirContentsOnly: true}))
	def, err := st.Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		return err
	}
	img := ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispecs.ImageConfig{
			Env:        []string{"PATH=/usr/local/go/bin:/bin", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "HOME=/root", "GOPATH=/root/go"},
			WorkingDir: "/",
		},
		RootFS: ocispecs.RootFS{Type: "layers"},
	}
	cfg, _ := json.Marshal(img)
	opt := client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{"busybox": bbFS, "goroot": goFS},
		Exports: []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{
			"name": ref, "push": "true", "registry.insecure": "true",
		}}},
	}
	_, err = c.Build(ctx, opt, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		r, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		ref, err := r.SingleRef()
		if err != nil {
			return nil, err
		}
		res := gateway.NewResult()
		res.SetRef(ref)
		res.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		return res, nil
	}, nil)
	if err != nil {
		return fmt.Errorf("build and push %s: %w", ref, err)
	}
	return nil
}

package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"
)

// Libvirt is a libvirtd (with its own virtlogd) of the tests: Debian's
// packages, run as root in a mount namespace of its own, where the test's
// folders are mounted over /etc/libvirt, /var/lib/libvirt, /var/log/libvirt,
// /var/cache/libvirt and /run/libvirt, so that it reads only its own
// configuration and shares no state with any other libvirtd of the machine.
// It needs no systemd. It listens on a unix socket in the test's folder and
// on TCP on 127.0.0.1 (no authentication), and has a dir storage pool.
type Libvirt struct {
	*Daemon
	Dir string
	// Socket is the unix socket; URI reaches it (qemu:///system?socket=...),
	// TCPURI the same daemon through qemu+tcp://127.0.0.1:PORT/system.
	Socket, URI, TCPURI string
	// Pool is the name of its storage pool, PoolDir that pool's folder.
	Pool, PoolDir string
	Log           string
}

// LibvirtMissing says why a test libvirtd cannot run here ("" when it can).
func LibvirtMissing() string {
	if os.Geteuid() != 0 {
		return "the test libvirtd runs as root (system mode, its own mount namespace): run the tests as root"
	}
	for _, bin := range []string{"libvirtd", "virtlogd", "virsh", "unshare", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is missing: run scripts/install-deps --test (apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86)"
		}
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"); err != nil {
		return "libvirt's QEMU driver is missing: run scripts/install-deps --test (apt-get install libvirt-daemon-driver-qemu)"
	}
	if _, err := user.Lookup("libvirt-qemu"); err != nil {
		return "libvirtd refuses to start without a libvirt-qemu user: run scripts/install-deps --test (it creates it, as libvirt-daemon-system does)"
	}
	return ""
}

// libvirtMounts are the folders libvirtd and virtlogd use, each replaced
// by one of the test's in the daemon's mount namespace.
var libvirtMounts = map[string]string{
	"etc": "/etc/libvirt", "lib": "/var/lib/libvirt", "log": "/var/log/libvirt",
	"cache": "/var/cache/libvirt", "run": "/run/libvirt",
}

// LibvirtOptions change the test daemon.
type LibvirtOptions struct {
	// WithoutQEMU leaves the QEMU driver out (a host that has libvirtd
	// but not libvirt-daemon-driver-qemu).
	WithoutQEMU bool
	// ConsoleMaxSize and ConsoleMaxBackups are virtlogd's max_size and
	// max_backups: the size at which it rotates a log file (a domain's
	// serial console log among them) and how many rotated generations
	// it keeps. 0 leaves virtlogd's defaults (2 MiB, 3).
	ConsoleMaxSize    int64
	ConsoleMaxBackups int
}

// driverDir holds libvirt's connection drivers, loaded as modules.
const driverDir = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver"

// StartLibvirt starts virtlogd and libvirtd with everything under dir, and
// defines and starts a dir storage pool in dir/pool.
func StartLibvirt(dir string) (*Libvirt, error) { return StartLibvirtWith(dir, LibvirtOptions{}) }

// StartLibvirtWith is StartLibvirt with options.
func StartLibvirtWith(dir string, opts LibvirtOptions) (*Libvirt, error) {
	if m := LibvirtMissing(); m != "" {
		return nil, errors.New(m)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for sub, target := range libvirtMounts {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(target, 0o755); err != nil { // the mount point
			return nil, err
		}
	}
	sockDir := filepath.Join(dir, "sock")
	poolDir := filepath.Join(dir, "pool")
	for _, d := range []string{sockDir, poolDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "libvirtd.log")
	files := map[string]string{
		"libvirtd.conf": fmt.Sprintf(`unix_sock_dir = %q
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "%d"
auth_tcp = "none"
log_outputs = "3:file:%s"
`, sockDir, port, logPath),
		// The guests run as root with no security driver and no cgroups:
		// nothing of this machine's is set up for libvirt.
		"qemu.conf": `user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
`,
		"virtlogd.conf": virtlogdConf(filepath.Join(dir, "virtlogd.log"), opts),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(body), 0o644); err != nil {
			return nil, err
		}
	}
	var script strings.Builder
	script.WriteString("set -e\nmount --make-rprivate /\n")
	for sub, target := range libvirtMounts {
		fmt.Fprintf(&script, "mount --bind %q %q\n", filepath.Join(dir, sub), target)
	}
	if opts.WithoutQEMU {
		drivers := filepath.Join(dir, "drivers")
		if err := os.MkdirAll(drivers, 0o755); err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(driverDir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), "qemu") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(driverDir, e.Name()))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(drivers, e.Name()), b, 0o755); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(&script, "mount --bind %q %q\n", drivers, driverDir)
	}
	fmt.Fprintf(&script, "virtlogd -f /etc/libvirt/virtlogd.conf -p /run/libvirt/virtlogd.pid &\n")
	fmt.Fprintf(&script, "exec libvirtd --listen -f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid\n")
	d, err := start("unshare", []string{"--mount", "--propagation", "private", "sh", "-c", script.String()}, filepath.Join(dir, "daemon.out"))
	if err != nil {
		return nil, err
	}
	l := &Libvirt{
		Daemon: d, Dir: dir, Socket: filepath.Join(sockDir, "libvirt-sock"),
		TCPURI: fmt.Sprintf("qemu+tcp://127.0.0.1:%d/system", port),
		Pool:   "unikfile-test", PoolDir: poolDir, Log: logPath,
	}
	l.URI = "qemu:///system?socket=" + l.Socket
	deadline := time.Now().Add(60 * time.Second)
	for {
		if d.exited() {
			return nil, fmt.Errorf("libvirtd exited:\n%s\n%s", logTail(filepath.Join(dir, "daemon.out")), logTail(logPath))
		}
		if c, err := net.Dial("unix", l.Socket); err == nil {
			c.Close()
			if _, err := l.Virsh(context.Background(), "version"); err == nil || opts.WithoutQEMU {
				break
			}
		}
		if time.Now().After(deadline) {
			l.Stop()
			return nil, fmt.Errorf("libvirtd did not answer on %s:\n%s", l.Socket, logTail(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if opts.WithoutQEMU {
		return l, nil // virsh's URI names the QEMU driver
	}
	if _, err := l.Virsh(context.Background(), "pool-create-as", l.Pool, "dir", "--target", poolDir); err != nil {
		l.Stop()
		return nil, err
	}
	return l, nil
}

// virtlogdConf is virtlogd's configuration: its own log, and the options'
// rotation limits.
func virtlogdConf(logFile string, opts LibvirtOptions) string {
	conf := fmt.Sprintf("log_outputs = \"3:file:%s\"\n", logFile)
	if opts.ConsoleMaxSize > 0 {
		conf += fmt.Sprintf("max_size = %d\n", opts.ConsoleMaxSize)
	}
	if opts.ConsoleMaxBackups > 0 {
		conf += fmt.Sprintf("max_backups = %d\n", opts.ConsoleMaxBackups)
	}
	return conf
}

// Virsh runs virsh against the daemon's unix socket.
func (l *Libvirt) Virsh(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", l.URI}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Domains are the names of every domain the daemon knows.
func (l *Libvirt) Domains(ctx context.Context) ([]string, error) {
	out, err := l.Virsh(ctx, "list", "--all", "--name")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// Volumes are the names of the volumes in the pool.
func (l *Libvirt) Volumes(ctx context.Context) ([]string, error) {
	if _, err := l.Virsh(ctx, "pool-refresh", l.Pool); err != nil {
		return nil, err
	}
	out, err := l.Virsh(ctx, "vol-list", "--pool", l.Pool)
	if err != nil {
		return nil, err
	}
	// " Name   Path", a rule, then one volume a line.
	var names []string
	lines := strings.Split(out, "\n")
	for _, line := range lines[min(2, len(lines)):] {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Stop destroys every domain (their QEMU processes are not in the
// daemon's process group) and stops libvirtd and virtlogd.
func (l *Libvirt) Stop() {
	if l == nil {
		return
	}
	ctx := context.Background()
	if names, err := l.Domains(ctx); err == nil {
		for _, n := range names {
			_, _ = l.Virsh(ctx, "destroy", n)
			_, _ = l.Virsh(ctx, "undefine", "--nvram", n)
		}
	}
	l.Daemon.Stop() // virtlogd is in its process group
}

package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/guest"
)

// Stop waits: how long QEMU gets to quit after QMP quit, then after SIGTERM.
const (
	quitGrace = 5 * time.Second
	// powerOffGrace is what a guest gets, after its app's stop grace, to
	// print its exit status and power off.
	powerOffGrace = 3 * time.Second
	termGrace     = 3 * time.Second
	qmpTimeout    = 3 * time.Second
)

// processAlive reports whether pid is a live QEMU of the instance whose run
// directory is runDir. Checking the command line guards against a reused
// PID; a zombie has an empty command line and counts as gone.
func processAlive(pid int, runDir string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(data) == 0 {
		return false
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	return strings.Contains(filepath.Base(args[0]), "qemu") && runDir != "" && bytes.Contains(data, []byte(runDir))
}

// readPIDFile reads QEMU's -pidfile.
func readPIDFile(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return pid
}

// waitGone polls until the process is gone or d has passed.
func waitGone(ctx context.Context, pid int, runDir string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !processAlive(pid, runDir) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopProcess stops the QEMU of an instance. A guest whose init watches
// the power button (its console says so) is asked first, through QMP
// system_powerdown: the app gets SIGTERM and guest.StopGraceSeconds to
// finish, and the guest powers off by itself. Then, or otherwise: QMP
// quit, SIGTERM to QEMU's process group (it leads its own session), and
// SIGKILL.
func stopProcess(ctx context.Context, pid int, runDir, qmpSocket, console string) error {
	if !processAlive(pid, runDir) {
		return nil
	}
	if qmpSocket != "" && consoleHasLine(console, guest.PowerButtonMarker) {
		grace := guest.StopGraceSeconds*time.Second + powerOffGrace
		if err := qmpExecute(ctx, qmpSocket, "system_powerdown", nil, nil); err == nil && waitGone(ctx, pid, runDir, grace) {
			return nil
		}
	}
	if qmpSocket != "" {
		if err := qmpExecute(ctx, qmpSocket, "quit", nil, nil); err == nil && waitGone(ctx, pid, runDir, quitGrace) {
			return nil
		}
	}
	if !processAlive(pid, runDir) {
		return nil
	}
	signalGroup(pid, syscall.SIGTERM)
	if waitGone(context.WithoutCancel(ctx), pid, runDir, termGrace) {
		return nil
	}
	if !processAlive(pid, runDir) {
		return nil
	}
	signalGroup(pid, syscall.SIGKILL)
	if waitGone(context.WithoutCancel(ctx), pid, runDir, termGrace) {
		return nil
	}
	return fmt.Errorf("qemu (pid %d) is still running after SIGKILL", pid)
}

// signalGroup signals QEMU's process group, or QEMU alone when it does not
// lead one.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// qmpExecute connects to a QMP socket, negotiates capabilities and runs one
// command. result, when non-nil, receives the command's "return" value.
func qmpExecute(ctx context.Context, socket, command string, args any, result any) error {
	ctx, cancel := context.WithTimeout(ctx, qmpTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	dec := json.NewDecoder(conn)
	var greeting map[string]json.RawMessage
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("qmp: read greeting: %w", err)
	}
	if _, ok := greeting["QMP"]; !ok {
		return errors.New("qmp: no greeting")
	}
	exec := func(cmd string, args any, result any) error {
		req := map[string]any{"execute": cmd}
		if args != nil {
			req["arguments"] = args
		}
		if err := json.NewEncoder(conn).Encode(req); err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		for {
			var resp struct {
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Class string `json:"class"`
					Desc  string `json:"desc"`
				} `json:"error"`
				Event string `json:"event"`
			}
			if err := dec.Decode(&resp); err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			switch {
			case resp.Error != nil:
				return fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
			case resp.Return != nil:
				if result != nil {
					return json.Unmarshal(resp.Return, result)
				}
				return nil
			}
			// An event; read on.
		}
	}
	if err := exec("qmp_capabilities", nil, nil); err != nil {
		return err
	}
	return exec(command, args, result)
}

// hmp runs a human monitor command through QMP and returns its output
// (HMP reports errors, and some successes, as output).
func hmp(ctx context.Context, socket, line string) (string, error) {
	var out string
	if err := qmpExecute(ctx, socket, "human-monitor-command", map[string]string{"command-line": line}, &out); err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// consoleHead is how much of the start of a console file consoleHasLine
// reads: the init's early markers come before the app's output.
const consoleHead = 256 << 10

// consoleHasLine reports whether a line of the start of a console file
// begins with prefix.
func consoleHasLine(path, prefix string) bool {
	// A rotated console keeps its start in the head file.
	return fileHasLine(headPath(path), prefix) || fileHasLine(path, prefix)
}

func fileHasLine(path, prefix string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, consoleHead)
	n, _ := io.ReadFull(f, buf)
	for _, l := range strings.Split(string(buf[:n]), "\n") {
		if strings.HasPrefix(strings.TrimRight(l, "\r"), prefix) {
			return true
		}
	}
	return false
}

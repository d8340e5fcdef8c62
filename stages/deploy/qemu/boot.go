package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

// portDialTimeout is short: QEMU's user networking accepts on the host side
// at once, so a slow dial means nothing and a long one only adds latency.
const portDialTimeout = 200 * time.Millisecond

// exitGrace is how long a guest that printed its exit status gets to power
// off before it is stopped.
const exitGrace = 5 * time.Second

// Boot starts QEMU for spec in a session of its own (it outlives unikfile
// and the terminal's Ctrl-C), then waits until the console shows the guest's
// ready marker and every forwarded host port accepts a connection.
//
// Attached, console lines go to spec.Console from the start and Boot returns
// when the guest exits (State Exited and its status) or ctx ends (the VM is
// stopped, State Stopped).
//
// On failure QEMU is stopped and the run directory removed; the error quotes
// the last console lines. The exception is an app that exited before it was
// ready: Boot returns the instance (State Exited, ExitStatus) with the error
// and keeps the run directory for `unikfile logs`.
func (p *Provider) Boot(ctx context.Context, spec deploy.Spec) (*state.Instance, error) {
	app := spec.AppName()
	if err := checkSpec(&spec); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	bin, err := run.Look(p.binary(), installHint)
	if err != nil {
		return nil, err
	}
	final, bootFw, err := planForwards(&spec)
	if err != nil {
		return nil, err
	}
	settings := SettingsOf(spec.Target)
	accel, warning, err := p.resolveAccel(ctx, settings.Accel, bin)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	if warning != "" {
		spec.Say("%s", warning)
	}
	cfg := defaultPaths(spec.RunDir)
	cfg.Binary, cfg.Machine, cfg.Accel = bin, MachinePC, accel
	cfg.MemoryMiB, cfg.CPUs = memoryMiB(&spec), settings.CPUs
	if cfg.CPUs <= 0 {
		cfg.CPUs = DefaultCPUs(spec.Image, runtime.NumCPU())
	}
	if isDisk(spec.Image) {
		if err := p.setDisk(&cfg, &spec); err != nil {
			return nil, fmt.Errorf("app %s: %w", app, err)
		}
	} else {
		cfg.Kernel = filepath.Join(spec.ImageDir, spec.Image.Kernel)
		if spec.Image.Initrd != "" {
			cfg.Initrd = filepath.Join(spec.ImageDir, spec.Image.Initrd)
		}
		if spec.Image.RootDisk != "" {
			cfg.RootDisk = filepath.Join(spec.ImageDir, spec.Image.RootDisk)
		}
		cfg.Machine = machineFor(spec.Image)
		cfg.Cmdline = p.machineCmdline(cfg, spec.Image)
	}
	cfg.GuestConsole = spec.Image.Console
	if hw := spec.Image.Hardware; hw != nil {
		cfg.CPUModel, cfg.NoACPI, cfg.DebugExit = hw.CPU, hw.NoACPI, hw.DebugExit
	}
	cfg.Forwards = bootFw
	cfg.ConsoleRotates = true
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	for _, f := range []string{cfg.Console, cfg.QMP, cfg.PIDFile} {
		_ = os.Remove(f) // leftovers would be read as this boot's
	}
	if err := p.prepareFirmware(cfg); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(spec.RunDir, ConfigFile), cfg, 0o644); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeoutTCG
		if accel == AccelKVM {
			timeout = DefaultTimeoutKVM
		}
	}
	b := &booting{
		p: p, spec: &spec, app: app, cfg: cfg, final: final, timeout: timeout,
		con: &consoleFollower{path: cfg.Console},
	}
	defer b.con.close()
	b.con.Protocol = cfg.GuestConsole
	if spec.Attach && spec.Console != nil {
		b.con.Out = spec.Console
	} else {
		b.con.OnError = func(msg string) { spec.Say("%s: guest %s", spec.AppName(), msg) }
	}
	if err := b.start(); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	b.inst = &state.Instance{
		ID: spec.ID, Project: spec.Project, Target: spec.Target.Name, App: app, Provider: Name,
		ImageDigest: spec.Image.Digest, ImageDir: spec.ImageDir, RunDir: spec.RunDir,
		State: state.Starting, PID: b.cmd.Process.Pid, Ports: toStatePorts(bootFw),
		Created: time.Now().UTC(), Config: rawCfg,
	}
	return b.run(ctx)
}

// checkSpec rejects what this provider cannot boot.
func checkSpec(spec *deploy.Spec) error {
	switch {
	case spec.Image == nil:
		return errors.New("no image to boot")
	case spec.Target == nil:
		return errors.New("no target")
	case spec.ID == "" || spec.RunDir == "":
		return errors.New("no instance ID or run directory")
	case isDisk(spec.Image):
		if err := checkDisk(spec.Image); err != nil {
			return err
		}
	case spec.Image.Kernel == "":
		return errors.New("the image has no kernel")
	}
	if !filepath.IsAbs(spec.RunDir) {
		return fmt.Errorf("run directory %q is not absolute", spec.RunDir)
	}
	if !filepath.IsAbs(spec.ImageDir) {
		abs, err := filepath.Abs(spec.ImageDir)
		if err != nil {
			return err
		}
		spec.ImageDir = abs
	}
	for _, f := range []string{spec.Image.Kernel, spec.Image.Initrd, spec.Image.RootDisk, spec.Image.Disk} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(spec.ImageDir, f)); err != nil {
			return fmt.Errorf("image file: %w; rebuild the image", err)
		}
	}
	return nil
}

func memoryMiB(spec *deploy.Spec) int {
	switch {
	case spec.Image.MemoryMiB > 0:
		return spec.Image.MemoryMiB
	case spec.App != nil && spec.App.MemoryMiB > 0:
		return spec.App.MemoryMiB
	}
	return DefaultMemoryMiB
}

// booting is one Boot in progress.
type booting struct {
	p       *Provider
	spec    *deploy.Spec
	app     string
	cfg     Config
	final   []Forward
	timeout time.Duration
	con     *consoleFollower
	inst    *state.Instance

	cmd     *exec.Cmd
	exited  chan struct{} // closed once QEMU has exited and been reaped
	waitErr error
}

// start runs QEMU in its own session with its output in the log file. A
// goroutine reaps it whenever it exits, so that it never lingers as a zombie
// while this process lives.
func (b *booting) start() error {
	logf, err := os.OpenFile(b.cfg.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // QEMU has its own copy
	fmt.Fprintf(logf, "# %s %s\n", time.Now().UTC().Format(time.RFC3339), run.CommandLine(b.cfg.Binary, b.cfg.Args()))
	cmd := exec.Command(b.cfg.Binary, b.cfg.Args()...)
	cmd.Dir = b.spec.RunDir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", run.CommandLine(b.cfg.Binary, b.cfg.Args()), err)
	}
	b.cmd = cmd
	b.exited = make(chan struct{})
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()
	return nil
}

func (b *booting) run(ctx context.Context) (*state.Instance, error) {
	if inst, err := b.waitReady(ctx); inst != nil || err != nil {
		return inst, err
	}
	b.inst.State, b.inst.Started = state.Running, time.Now().UTC()
	// Hand the host ports over: the instances this one replaces stop
	// listening on them (their open connections go on), this one starts;
	// whatever happens to ctx meanwhile. Only then is it ready for the
	// caller, which records it and stops the replaced instances: a record
	// that says running always has its real ports.
	hctx := context.WithoutCancel(ctx)
	released := releasePorts(hctx, b.spec.Replaces)
	if err := b.takeOverPorts(hctx); err != nil {
		restorePorts(hctx, released)
		b.abort(ctx)
		return nil, fmt.Errorf("app %s: ready, but cannot take over the host ports of the instance it replaces: %w", b.app, err)
	}
	if b.spec.Ready != nil {
		if err := b.spec.Ready(b.inst); err != nil {
			// It serves; what failed is recording it or stopping the old.
			return b.inst, fmt.Errorf("app %s: %w", b.app, err)
		}
	}
	if !b.spec.Attach {
		return b.inst, nil
	}
	return b.follow(ctx)
}

// waitReady returns (nil, nil) once the instance is ready, and otherwise
// what Boot returns.
func (b *booting) waitReady(ctx context.Context) (*state.Instance, error) {
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	tick := time.NewTicker(b.p.poll())
	defer tick.Stop()
	for {
		b.con.poll()
		if b.con.Exit() != nil {
			return b.exitedEarly(ctx)
		}
		if b.con.Ready() && b.portsAnswer(b.cfg.Forwards) == nil && (!b.accepts() || b.guestAccepts(ctx, b.cfg.Forwards) == nil) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			b.abort(ctx)
			return nil, ctx.Err()
		case <-b.exited:
			b.con.poll()
			b.con.Flush()
			if b.exitStatus() != nil {
				return b.exitedEarly(ctx)
			}
			err := fmt.Errorf("app %s: qemu exited (%v) before the app was ready\ncommand: %s\n%s",
				b.app, b.waitErr, run.CommandLine(b.cfg.Binary, b.cfg.Args()), b.quote())
			b.abort(ctx)
			return nil, err
		case <-timer.C:
			why := "the guest did not print that it was ready"
			if errs := b.con.Errors(); len(errs) > 0 {
				why += "; its init said: " + strings.Join(errs, "; ")
			}
			switch {
			case b.con.Ready() && b.accepts() && b.portsAnswer(b.cfg.Forwards) == nil:
				why = fmt.Sprintf("the guest has not accepted a connection on its ports: %v", b.guestAccepts(ctx, b.cfg.Forwards))
			case b.con.Ready():
				why = fmt.Sprintf("the guest is ready but the forwarded host port does not answer: %v", b.portsAnswer(b.cfg.Forwards))
			}
			err := fmt.Errorf("app %s was not ready after %s (accel %s): %s\n%s", b.app, b.timeout, b.cfg.Accel, why, b.quote())
			b.abort(ctx)
			return nil, err
		case <-tick.C:
		}
	}
}

// portsAnswer connects to every forwarded host port.
func (b *booting) portsAnswer(fw []Forward) error {
	for _, f := range fw {
		c, err := net.DialTimeout("tcp", dialAddr(f), portDialTimeout)
		if err != nil {
			return err
		}
		_ = c.Close()
	}
	return nil
}

// accepts says the image's console protocol asks for the guest's own
// acceptance of a connection on every forwarded port (see guestAccepts).
func (b *booting) accepts() bool {
	return b.cfg.GuestConsole != nil && b.cfg.GuestConsole.Accepts
}

// exitedEarly handles an exit marker before readiness: the guest powers off
// by itself; the instance is returned as exited with an error.
func (b *booting) exitedEarly(ctx context.Context) (*state.Instance, error) {
	if !b.halts() {
		select {
		case <-b.exited:
		case <-time.After(exitGrace):
		}
	}
	// The app is gone: nothing to stop gracefully.
	_ = stopProcess(context.WithoutCancel(ctx), b.cmd.Process.Pid, b.spec.RunDir, b.cfg.QMP, "")
	b.waitReaped()
	b.con.poll()
	b.con.Flush()
	st := b.exitStatus() // called once one of them told
	b.inst.State, b.inst.ExitStatus = state.Exited, st
	return b.inst, fmt.Errorf("app %s exited with status %d before it was ready; last console lines:\n%s", b.app, *st, b.con.Tail())
}

// exitStatus is the app's exit status: the console's exit line, or once
// QEMU has exited by itself, what the image's exit device says QEMU's
// status means (pack.DebugExit); nil when neither tells.
func (b *booting) exitStatus() *int {
	if st := b.con.Exit(); st != nil {
		return st
	}
	if b.cfg.DebugExit == nil || b.exited == nil {
		return nil
	}
	select {
	case <-b.exited:
	default:
		return nil
	}
	var ee *exec.ExitError
	if errors.As(b.waitErr, &ee) {
		if st, ok := b.cfg.DebugExit.AppStatus(ee.ExitCode()); ok {
			return &st
		}
	}
	return nil
}

// halts says the guest halts after its exit line instead of powering off
// (pack.ConsoleProtocol.Halts): there is nothing to wait for.
func (b *booting) halts() bool {
	return b.cfg.GuestConsole != nil && b.cfg.GuestConsole.Halts
}

// quote is the tail of QEMU's own log and of the console, for errors.
func (b *booting) quote() string {
	var s strings.Builder
	if t := strings.TrimSpace(fileTail(b.cfg.Log, 10)); t != "" {
		fmt.Fprintf(&s, "qemu's output (%s):\n%s\n", b.cfg.Log, t)
	}
	fmt.Fprintf(&s, "last console lines:\n%s", b.con.Tail())
	return s.String()
}

// abort stops QEMU at once (a boot that failed or was interrupted serves
// nobody yet) and removes the run directory.
func (b *booting) abort(ctx context.Context) {
	_ = stopProcess(context.WithoutCancel(ctx), b.cmd.Process.Pid, b.spec.RunDir, b.cfg.QMP, "")
	// stopProcess goes by the command line, which a just-started QEMU may
	// not show yet: make sure.
	_ = b.cmd.Process.Kill()
	b.waitReaped()
	_ = os.RemoveAll(b.spec.RunDir)
}

func (b *booting) waitReaped() {
	select {
	case <-b.exited:
	case <-time.After(termGrace):
	}
}

// releasedPort is a forward removed from a replaced instance's QEMU.
type releasedPort struct {
	qmp string
	fw  Forward
}

// releasePorts removes the host port forwards of the QEMU instances in
// insts, so that their replacement can listen there. Connections already
// open go on. Instances that are gone or unreachable are skipped: their
// ports are free or will be found busy by takeOverPorts.
func releasePorts(ctx context.Context, insts []*state.Instance) []releasedPort {
	var out []releasedPort
	for _, inst := range insts {
		if inst.Provider != Name {
			continue
		}
		c, err := ConfigOf(inst)
		if err != nil || c.QMP == "" {
			continue
		}
		for _, p := range inst.Ports {
			line := fmt.Sprintf("hostfwd_remove %s tcp:%s:%d", netdevID, p.Bind, p.Host)
			if res, err := hmp(ctx, c.QMP, line); err == nil && strings.Contains(res, "removed") {
				out = append(out, releasedPort{qmp: c.QMP, fw: Forward{Bind: p.Bind, Host: p.Host, Guest: p.Guest}})
			}
		}
	}
	return out
}

// restorePorts gives released forwards back after a failed take-over.
func restorePorts(ctx context.Context, ports []releasedPort) {
	for _, r := range ports {
		_, _ = hmp(ctx, r.qmp, "hostfwd_add "+netdevID+" "+r.fw.Rule())
	}
}

// takeOverPorts moves the forwards that booted on temporary host ports to
// the real ones, which releasePorts has freed.
func (b *booting) takeOverPorts(ctx context.Context) error {
	moved := false
	for i, f := range b.cfg.Forwards {
		to := b.final[i]
		if f.Host == to.Host {
			continue
		}
		line := fmt.Sprintf("hostfwd_remove %s tcp:%s:%d", netdevID, f.Bind, f.Host)
		if out, err := hmp(ctx, b.cfg.QMP, line); err != nil {
			return err
		} else if !strings.Contains(out, "removed") {
			return fmt.Errorf("%s: %s", line, out)
		}
		if err := checkFree(to.Bind, to.Host); err != nil {
			return &deploy.PortInUseError{App: b.app, Bind: to.Bind, Port: to.Host, Guest: to.Guest, Err: err}
		}
		line = "hostfwd_add " + netdevID + " " + to.Rule()
		if out, err := hmp(ctx, b.cfg.QMP, line); err != nil {
			return err
		} else if out != "" {
			return fmt.Errorf("%s: %s", line, out)
		}
		moved = true
	}
	if moved {
		b.inst.Ports = toStatePorts(b.final)
		return b.portsAnswer(b.final)
	}
	return nil
}

// follow copies the console until the guest exits or ctx ends.
func (b *booting) follow(ctx context.Context) (*state.Instance, error) {
	tick := time.NewTicker(b.p.poll())
	defer tick.Stop()
	for {
		_ = rotateConsole(ctx, b.cfg, b.p.consoleMax())
		b.con.poll()
		if b.con.Exit() != nil && b.halts() {
			// The app ended and the guest halted: stop its QEMU.
			_ = stopProcess(context.WithoutCancel(ctx), b.cmd.Process.Pid, b.spec.RunDir, b.cfg.QMP, "")
			b.waitReaped()
			b.con.poll()
			b.con.Flush()
			b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
			return b.inst, nil
		}
		select {
		case <-ctx.Done():
			_ = stopProcess(context.WithoutCancel(ctx), b.cmd.Process.Pid, b.spec.RunDir, b.cfg.QMP, b.cfg.Console)
			b.waitReaped()
			b.con.poll()
			b.con.Flush()
			if b.con.Exit() != nil {
				b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
			} else {
				b.inst.State = state.Stopped
			}
			return b.inst, nil
		case <-b.exited:
			b.con.poll()
			b.con.Flush()
			if st := b.exitStatus(); st != nil {
				b.inst.State, b.inst.ExitStatus = state.Exited, st
				return b.inst, nil
			}
			b.inst.State = state.Failed
			why := "it was stopped from outside (for example by `unikfile down`)"
			if b.waitErr != nil {
				why = fmt.Sprintf("qemu ended with %v", b.waitErr)
			}
			return b.inst, fmt.Errorf("app %s: the VM stopped before the app exited: %s\n%s", b.app, why, b.quote())
		case <-tick.C:
		}
	}
}

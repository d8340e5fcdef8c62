package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/state"
)

// Name is the provider's name in a target's `provider` attribute.
const Name = "qemu"

// DefaultBinary is the QEMU program booted.
const DefaultBinary = "qemu-system-x86_64"

// installHint ends the error when QEMU is missing.
const installHint = "install it: apt-get install qemu-system-x86"

// Default readiness timeouts: emulation boots several times slower.
const (
	DefaultTimeoutTCG = 120 * time.Second
	DefaultTimeoutKVM = 30 * time.Second
)

// DefaultMemoryMiB is the guest memory when neither image nor app says.
const DefaultMemoryMiB = 256

// Files in an instance's run directory.
const (
	ConsoleFile = "console.log"
	QEMULogFile = "qemu.log"
	QMPFile     = "qmp.sock"
	PIDFile     = "qemu.pid"
	ConfigFile  = "config.json"
)

// Provider boots images in local QEMU processes.
type Provider struct {
	// Binary is the QEMU program; "" means DefaultBinary, looked up in PATH.
	Binary string
	// ProbeTimeout bounds the KVM probe; 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Poll is how often a boot checks the console and the ports; 0 means
	// 10 ms.
	Poll time.Duration
	// OVMFCode and OVMFVars are the UEFI firmware for disk images that
	// boot by UEFI; "" means Debian's (DefaultOVMFCode, DefaultOVMFVars).
	OVMFCode, OVMFVars string
	// ConsoleMax is the size at which a console file is rotated (see
	// rotate.go); 0 means deploy.DefaultConsoleMax, less than 0 never.
	ConsoleMax int64

	stateDir string
	probeMu  sync.Mutex
	tsc      tscOnce
}

// New is the registry's constructor.
func New(env deploy.Env) (deploy.Provider, error) {
	return NewProvider(env), nil
}

// NewProvider returns the provider; it caches the KVM probe's result under
// env.StateDir/qemu.
func NewProvider(env deploy.Env) *Provider {
	return &Provider{stateDir: env.StateDir, ConsoleMax: deploy.ConsoleMax()}
}

var _ deploy.Provider = (*Provider)(nil)

// BootsForeignGuests: the qemu provider applies an image's console
// protocol and attaches its root disk (deploy.ForeignGuests).
func (p *Provider) BootsForeignGuests() {}

func (p *Provider) binary() string {
	if p.Binary != "" {
		return p.Binary
	}
	return DefaultBinary
}

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return 10 * time.Millisecond // reads only what the console appended: cheap
}

// ConfigOf decodes the QEMU config stored with an instance.
func ConfigOf(inst *state.Instance) (Config, error) {
	var c Config
	if len(inst.Config) == 0 {
		// Recorded before the boot got far enough: the run directory's
		// files are where they always are.
		return defaultPaths(inst.RunDir), nil
	}
	if err := json.Unmarshal(inst.Config, &c); err != nil {
		return c, fmt.Errorf("instance %s: qemu config: %w", inst.ID, err)
	}
	return c, nil
}

func defaultPaths(runDir string) Config {
	return Config{
		Console: filepath.Join(runDir, ConsoleFile),
		QMP:     filepath.Join(runDir, QMPFile),
		PIDFile: filepath.Join(runDir, PIDFile),
		Log:     filepath.Join(runDir, QEMULogFile),
	}
}

// pidOf is the instance's QEMU PID: recorded, or from QEMU's pid file when
// the command that booted it died before recording it.
func pidOf(inst *state.Instance, c Config) int {
	if inst.PID > 0 {
		return inst.PID
	}
	return readPIDFile(c.PIDFile)
}

// Refresh sets inst.State from the QEMU process and the console: running
// (ready marker seen) or starting while QEMU lives; exited with the status
// the guest printed; stopped when unikfile stopped it; failed when QEMU is
// gone without an exit status. A record without a config (its booter died
// early) gets the config and ports from the run directory.
func (p *Provider) Refresh(ctx context.Context, inst *state.Instance) error {
	if len(inst.Config) == 0 {
		// The command that booted it died before recording how: the run
		// directory has the config.
		if raw, err := os.ReadFile(filepath.Join(inst.RunDir, ConfigFile)); err == nil {
			var c Config
			if json.Unmarshal(raw, &c) == nil {
				inst.Config, inst.Ports = json.RawMessage(raw), toStatePorts(c.Forwards)
			}
		}
	}
	c, err := ConfigOf(inst)
	if err != nil {
		return err
	}
	pid := pidOf(inst, c)
	exit := consoleExit(c.Console, c.GuestConsole)
	switch {
	case exit != nil:
		inst.State, inst.ExitStatus = state.Exited, exit
	case processAlive(pid, inst.RunDir):
		inst.PID = pid
		_ = rotateConsole(ctx, c, p.consoleMax())
		// A running instance stays running. A starting one stays starting
		// even when its guest is ready: only the command that booted it
		// makes it running (after taking over the ports of what it
		// replaces), so a booter that died leaves a record the next `up`
		// recognises and removes.
		if inst.State != state.Running {
			inst.State = state.Starting
		}
	case inst.State == state.Stopped || inst.State == state.Exited:
	default:
		inst.State = state.Failed
	}
	return nil
}

// Stop stops the instance's QEMU (QMP quit, then SIGTERM, then SIGKILL) and
// marks it stopped unless the app had exited. Stopping a stopped instance
// does nothing.
func (p *Provider) Stop(ctx context.Context, inst *state.Instance) error {
	c, err := ConfigOf(inst)
	if err != nil {
		return err
	}
	if err := stopProcess(ctx, pidOf(inst, c), inst.RunDir, c.QMP, c.Console); err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	if exit := consoleExit(c.Console, c.GuestConsole); exit != nil {
		inst.State, inst.ExitStatus = state.Exited, exit
	} else if inst.State != state.Exited {
		inst.State = state.Stopped
	}
	return nil
}

// Logs copies the serial console to w (without carriage returns). With
// follow it polls for more until the instance's QEMU is gone (then drains
// the rest) or ctx ends, which is not an error.
func (p *Provider) Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error {
	c, err := ConfigOf(inst)
	if err != nil {
		return err
	}
	r, older, err := openConsole(c.Console, true)
	if errors.Is(err, os.ErrNotExist) && follow && inst.Alive() {
		// QEMU creates the file when it starts; give a fresh boot a moment.
		for i := 0; i < 50 && errors.Is(err, os.ErrNotExist) && ctx.Err() == nil; i++ {
			time.Sleep(100 * time.Millisecond)
			r, older, err = openConsole(c.Console, true)
		}
	}
	if err != nil {
		return fmt.Errorf("instance %s: no console log: %w", inst.ID, err)
	}
	defer r.close()
	out := console.StripCR{W: w}
	if older != nil {
		if _, err := io.Copy(out, older); err != nil {
			return err
		}
	}
	if err := r.copyTo(out); err != nil || !follow {
		return err
	}
	pid := pidOf(inst, c)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if pid == 0 {
			pid = readPIDFile(c.PIDFile)
		}
		alive := processAlive(pid, inst.RunDir)
		if alive {
			_ = rotateConsole(ctx, c, p.consoleMax())
		}
		if err := r.copyTo(out); err != nil {
			return err
		}
		if !alive {
			return nil
		}
	}
}

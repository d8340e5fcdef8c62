package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/internal/run"
)

// DefaultProbeTimeout bounds the KVM probe. A working KVM finishes it in
// well under a second; a broken one hangs.
const DefaultProbeTimeout = 3 * time.Second

// kvmDevice is the KVM device node.
const kvmDevice = "/dev/kvm"

// bootIDFile identifies the host's current boot: a probe result holds until
// the next reboot (or a change of the QEMU binary).
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// probeResult is a KVM probe's outcome, cached in the state directory.
type probeResult struct {
	BootID string    `json:"boot_id"`
	Binary string    `json:"binary"`
	Usable bool      `json:"usable"`
	Reason string    `json:"reason,omitempty"` // why not, when not
	When   time.Time `json:"when"`
}

// resolveAccel turns the target's accel setting into "kvm" or "tcg". For
// auto it returns a warning for the user when KVM is not usable.
func (p *Provider) resolveAccel(ctx context.Context, setting, binary string) (accel, warning string, err error) {
	switch setting {
	case AccelTCG:
		return AccelTCG, "", nil
	case AccelKVM, AccelAuto, "":
	default:
		return "", "", fmt.Errorf("qemu accel %q: want auto, kvm or tcg", setting)
	}
	res, err := p.kvmUsable(ctx, binary)
	if err != nil {
		return "", "", err
	}
	if res.Usable {
		return AccelKVM, "", nil
	}
	if setting == AccelKVM {
		return "", "", fmt.Errorf("accel = \"kvm\" but KVM is not usable: %s; use accel = \"auto\" or \"tcg\" to run under emulation", res.Reason)
	}
	return AccelTCG, fmt.Sprintf("KVM not usable (%s); using TCG emulation, which is slower", res.Reason), nil
}

// kvmUsable returns the cached probe result for this boot of the host, or
// probes and caches. Probes are serialized within the process.
func (p *Provider) kvmUsable(ctx context.Context, binary string) (probeResult, error) {
	p.probeMu.Lock()
	defer p.probeMu.Unlock()
	// Opening /dev/kvm is cheap and its answer changes without a reboot
	// (a user added to the kvm group): check it every time, and cache only
	// what the probe boot found.
	f, err := os.OpenFile(kvmDevice, os.O_RDWR, 0)
	if err != nil {
		return probeResult{Reason: fmt.Sprintf("cannot open %s: %v", kvmDevice, errors.Unwrap(err))}, nil
	}
	_ = f.Close()
	bootID := readBootID()
	cache := p.probeCachePath()
	if bootID != "" && cache != "" {
		var cached probeResult
		if data, err := os.ReadFile(cache); err == nil &&
			json.Unmarshal(data, &cached) == nil && cached.BootID == bootID && cached.Binary == binary {
			return cached, nil
		}
	}
	usable, reason, err := probeKVM(ctx, binary, AccelKVM, p.probeTimeout())
	if err != nil {
		return probeResult{}, err
	}
	res := probeResult{BootID: bootID, Binary: binary, Usable: usable, Reason: reason, When: time.Now().UTC()}
	if bootID != "" && cache != "" {
		// A cache that cannot be written only costs a probe next time.
		_ = atomicfile.WriteJSON(cache, res, 0o644)
	}
	return res, nil
}

func (p *Provider) probeCachePath() string {
	if p.stateDir == "" {
		return ""
	}
	return filepath.Join(p.stateDir, Name, "kvm-probe.json")
}

func (p *Provider) probeTimeout() time.Duration {
	if p.ProbeTimeout > 0 {
		return p.ProbeTimeout
	}
	return DefaultProbeTimeout
}

func readBootID() string {
	data, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// probeKVM runs the probe firmware under accel (kvm, or tcg in tests) and
// says whether it finished within limit. err is only for a cancelled ctx or
// a missing binary: every other failure is a reason.
func probeKVM(ctx context.Context, binary, accel string, limit time.Duration) (usable bool, reason string, err error) {
	if accel == AccelKVM {
		f, err := os.OpenFile(kvmDevice, os.O_RDWR, 0)
		if err != nil {
			return false, fmt.Sprintf("cannot open %s: %v", kvmDevice, errors.Unwrap(err)), nil
		}
		_ = f.Close()
	}
	fw, err := os.CreateTemp("", "unikfile-kvm-probe-*.bin")
	if err != nil {
		return false, "", fmt.Errorf("kvm probe: %w", err)
	}
	defer os.Remove(fw.Name())
	_, err = fw.Write(probeFirmware())
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, "", fmt.Errorf("kvm probe: %w", err)
	}
	cpu := "max"
	if accel == AccelKVM {
		cpu = "host"
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	_, err = run.Run(pctx, run.Cmd{
		Path: binary,
		Args: []string{
			"-accel", accel, "-cpu", cpu, "-M", "pc", "-m", "16",
			"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
			"-bios", fw.Name(),
			"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		},
		Hint: installHint,
	})
	var re *run.Error
	switch {
	case ctx.Err() != nil:
		return false, "", ctx.Err()
	case err == nil:
		return false, "the probe guest did not report back", nil
	case errors.As(err, &re) && re.ExitCode == probeExitCode:
		return true, "", nil
	case pctx.Err() != nil:
		return false, fmt.Sprintf("a test guest did not finish within %s under -accel %s", limit, accel), nil
	case re != nil:
		return false, fmt.Sprintf("qemu -accel %s failed: %s", accel, probeFailure(re)), nil
	default:
		return false, "", err // not found
	}
}

// probeFailure picks the line of QEMU's stderr that says what went wrong,
// skipping its warnings about CPU features.
func probeFailure(e *run.Error) string {
	lines := strings.Split(e.Tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.Contains(l, "warning:") {
			return l
		}
	}
	if e.ExitCode >= 0 {
		return fmt.Sprintf("exit status %d", e.ExitCode)
	}
	return e.Err.Error()
}

package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/deploy"
)

func TestResolveAccelForcedTCG(t *testing.T) {
	dir := t.TempDir()
	p := NewProvider(deploy.Env{StateDir: dir})
	// tcg needs no probe: not even a QEMU binary.
	accel, warning, err := p.resolveAccel(context.Background(), AccelTCG, "/nonexistent/qemu")
	if err != nil || accel != AccelTCG || warning != "" {
		t.Errorf("resolveAccel(tcg) = %q, %q, %v", accel, warning, err)
	}
	if _, err := os.Stat(filepath.Join(dir, Name)); !os.IsNotExist(err) {
		t.Errorf("forced tcg touched the probe cache: %v", err)
	}
	if _, _, err := p.resolveAccel(context.Background(), "hvf", "/nonexistent/qemu"); err == nil || !strings.Contains(err.Error(), "auto, kvm or tcg") {
		t.Errorf("resolveAccel(hvf) error = %v", err)
	}
}

func TestResolveAccelUsesCache(t *testing.T) {
	if readBootID() == "" {
		t.Skip("no boot id on this host")
	}
	dir := t.TempDir()
	p := NewProvider(deploy.Env{StateDir: dir})
	// A cached negative result for this boot is used without probing (the
	// binary does not exist, so a probe would fail differently).
	bin := "/nonexistent/qemu"
	err := atomicfile.WriteJSON(p.probeCachePath(), probeResult{BootID: readBootID(), Binary: bin, Reason: "cached reason"}, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	accel, warning, err := p.resolveAccel(context.Background(), AccelAuto, bin)
	if err != nil || accel != AccelTCG {
		t.Fatalf("resolveAccel(auto) = %q, %v", accel, err)
	}
	want := "KVM not usable (cached reason); using TCG emulation, which is slower"
	if warning != want {
		t.Errorf("warning = %q, want %q", warning, want)
	}
	if _, _, err := p.resolveAccel(context.Background(), AccelKVM, bin); err == nil || !strings.Contains(err.Error(), "cached reason") {
		t.Errorf("resolveAccel(kvm) with unusable KVM: %v", err)
	}
}

func qemuBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath(DefaultBinary)
	if err != nil {
		t.Skip("needs " + DefaultBinary + ": " + installHint)
	}
	return bin
}

// The probe firmware really reaches long mode and reports back when the
// accelerator works; TCG always does.
func TestProbeFirmwareUnderTCGNeedsQEMU(t *testing.T) {
	bin := qemuBinary(t)
	ok, reason, err := probeKVM(context.Background(), bin, AccelTCG, 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("probe under tcg = %v, %q, %v", ok, reason, err)
	}
}

// The real auto resolution: KVM or TCG with a warning, within the probe's
// time limit, and cached for the next call.
func TestResolveAccelAutoNeedsQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("may wait for the probe's time limit; skipped with -short")
	}
	bin := qemuBinary(t)
	dir := t.TempDir()
	p := NewProvider(deploy.Env{StateDir: dir})
	start := time.Now()
	accel, warning, err := p.resolveAccel(context.Background(), AccelAuto, bin)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	t.Logf("auto -> %s in %s; %s", accel, first.Round(time.Millisecond), warning)
	if accel == AccelTCG && !strings.HasPrefix(warning, "KVM not usable (") {
		t.Errorf("tcg fallback without the warning: %q", warning)
	}
	if first > DefaultProbeTimeout+5*time.Second {
		t.Errorf("probe took %s", first)
	}
	start = time.Now()
	accel2, warning2, err := p.resolveAccel(context.Background(), AccelAuto, bin)
	if err != nil || accel2 != accel || warning2 != warning {
		t.Errorf("second resolve = %q %q %v", accel2, warning2, err)
	}
	if readBootID() != "" && time.Since(start) > 500*time.Millisecond {
		t.Errorf("second resolve took %s: cache not used", time.Since(start))
	}
}

// fakeQEMU writes a shell script standing in for QEMU.
func fakeQEMU(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// The two ways a broken KVM shows: QEMU aborts with an error, or the guest
// hangs. Both are reasons, not errors, and the hang is cut at the limit.
func TestProbeFailures(t *testing.T) {
	for _, c := range []struct {
		name, script, want string
	}{
		{"abort", `echo "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]" >&2
echo "qemu-system-x86_64: error: failed to set MSR 0x38d to 0x0" >&2
exit 1`, "failed: qemu-system-x86_64: error: failed to set MSR 0x38d to 0x0"},
		{"hang", "exec sleep 30", "did not finish within 500ms"},
		{"exits cleanly", "exit 0", "did not report back"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			ok, reason, err := probeKVM(context.Background(), fakeQEMU(t, c.script), AccelTCG, 500*time.Millisecond)
			if err != nil || ok || !strings.Contains(reason, c.want) {
				t.Errorf("probe = %v, %q, %v; want a reason with %q", ok, reason, err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("probe took %s", d)
			}
		})
	}
	ok, _, err := probeKVM(context.Background(), fakeQEMU(t, "exit 85"), AccelTCG, time.Second)
	if !ok || err != nil {
		t.Errorf("exit 85 = %v, %v; want usable", ok, err)
	}
}

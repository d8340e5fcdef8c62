package qemu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy"
)

// The TSC frequency is measured once per boot of the host and kept in the
// state directory: a second provider (the next `up`) reads it back
// without the 60 ms measurement, and a record of another boot is measured
// again.
func TestTSCFrequencyIsMeasuredOncePerHostBoot(t *testing.T) {
	if runtime.GOARCH != "amd64" || readBootID() == "" {
		t.Skip("needs an x86 TSC and /proc/sys/kernel/random/boot_id")
	}
	dir := t.TempDir()
	first := NewProvider(deploy.Env{StateDir: dir}).hostTSCkHz()
	if first <= 0 {
		t.Fatalf("measured %d kHz", first)
	}
	path := filepath.Join(dir, Name, "tsc.json")
	var rec tscRecord
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &rec) != nil || rec.KHz != first || rec.BootID != readBootID() {
		t.Fatalf("record %s: %+v, %v", path, rec, err)
	}
	// A recorded value is used as it is, at once.
	rec.KHz = 1234567
	b, _ := json.Marshal(rec)
	os.WriteFile(path, b, 0o644)
	if got := NewProvider(deploy.Env{StateDir: dir}).hostTSCkHz(); got != 1234567 {
		t.Errorf("second provider: %d kHz, want the recorded 1234567", got)
	}
	// Another boot's record is measured again.
	rec.BootID = "another-boot"
	b, _ = json.Marshal(rec)
	os.WriteFile(path, b, 0o644)
	if got := NewProvider(deploy.Env{StateDir: dir}).hostTSCkHz(); got == 1234567 || got <= 0 {
		t.Errorf("after a reboot: %d kHz, want a new measurement", got)
	}
}

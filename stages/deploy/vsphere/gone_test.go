//go:build !race

package vsphere

// Not built with -race: govmomi's simulator (v0.56.0) reads a VM's devices
// in its datastore file handler without the lock its DestroyTask holds
// while removing them, so the race detector reports the simulator itself
// when logs -f reads the console while the VM is destroyed. The test runs
// in the ordinary test run.

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/state"
)

// ps reconciles with the inventory: a VM deleted behind unikfile's back
// shows as failed (gone), and stopping it twice is fine.
func TestVMDeletedInVcenterShowsGoneWithStandInGuest(t *testing.T) {
	s := newSim(t)
	g := s.standIn(func(string) []string { return bootLines("192.0.2.15") })
	ti := newTestImage(t, "api", "bios")
	p := s.provider()
	inst, err := p.Boot(context.Background(), ti.spec(t, s.target(s.settings(), "api"), "api-gone"))
	if err != nil {
		t.Fatal(err)
	}
	// More console output while it runs, then logs -f until the VM stops.
	g.write(vmPrefix+inst.ID, "GET / 200")
	if err := p.Refresh(context.Background(), inst); err != nil || inst.State != state.Running {
		t.Fatalf("refresh of a running VM: %s, %v", inst.State, err)
	}
	vm := s.vms()[vmPrefix+inst.ID]
	done := make(chan string)
	go func() {
		var out bytes.Buffer
		_ = p.Logs(context.Background(), inst, true, &out)
		done <- out.String()
	}()
	time.Sleep(100 * time.Millisecond)
	g.write(vmPrefix+inst.ID, "GET /later 200")
	time.Sleep(100 * time.Millisecond)
	if err := destroy(context.Background(), vm); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-done:
		if !strings.Contains(out, "unikfile-init: ready\nGET / 200\nGET /later 200\n") {
			t.Errorf("logs -f: %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end when the VM went")
	}
	if err := p.Refresh(context.Background(), inst); err != nil || inst.State != state.Failed {
		t.Errorf("refresh of a deleted VM: %s, %v; want failed", inst.State, err)
	}
	for range 2 {
		if err := p.Stop(context.Background(), inst); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	s.nothingLeft()
}

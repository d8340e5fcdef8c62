package state

import (
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// Of many claims of one target taken at the same instant exactly one
// succeeds, and the others learn the holder's PID; releasing frees it.
func TestClaimTargetIsAtomic(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	type res struct {
		release func()
		holder  int
		ok      bool
		err     error
	}
	out := make([]res, n)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, h, ok, err := s.ClaimTarget("/p", "dev")
			out[i] = res{r, h, ok, err}
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	var release func()
	for _, r := range out {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.ok {
			winners++
			release = r.release
		} else if r.holder != os.Getpid() {
			t.Errorf("a loser was told holder %d, want %d", r.holder, os.Getpid())
		}
	}
	if winners != 1 {
		t.Fatalf("%d claims succeeded, want 1", winners)
	}
	if h := s.ClaimHolder("/p", "dev"); h != os.Getpid() {
		t.Errorf("ClaimHolder = %d while held", h)
	}
	if h := s.ClaimHolder("/p", "prod"); h != 0 {
		t.Errorf("ClaimHolder of another target = %d", h)
	}
	release()
	release()
	if h := s.ClaimHolder("/p", "dev"); h != 0 {
		t.Errorf("ClaimHolder = %d after release", h)
	}
	r, _, ok, err := s.ClaimTarget("/p", "dev")
	if err != nil || !ok {
		t.Fatalf("claim after release: %v %v", ok, err)
	}
	r()
}

// A claim held by another process names that process, and dies with it,
// even by SIGKILL.
func TestClaimTargetHeldByAnotherProcess(t *testing.T) {
	if os.Getenv("STATE_CLAIM_HELPER") != "" {
		s, err := Open(os.Getenv("STATE_CLAIM_HELPER"))
		if err != nil {
			os.Exit(3)
		}
		if _, _, ok, err := s.ClaimTarget("/p", "dev"); err != nil || !ok {
			os.Exit(4)
		}
		os.Stdout.WriteString("claimed\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClaimTargetHeldByAnotherProcess$")
	cmd.Env = append(os.Environ(), "STATE_CLAIM_HELPER="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 8)
	if _, err := stdout.Read(buf); err != nil || string(buf[:7]) != "claimed" {
		t.Fatalf("helper did not claim: %q %v", buf, err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, holder, ok, err := s.ClaimTarget("/p", "dev")
	if err != nil || ok || holder != cmd.Process.Pid {
		t.Fatalf("claim while another process holds it: ok %v holder %d err %v, want holder %d", ok, holder, err, cmd.Process.Pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	release, _, ok, err := s.ClaimTarget("/p", "dev")
	if err != nil || !ok {
		t.Fatalf("claim after the holder was killed: ok %v err %v (holder file %s)", ok, err, strconv.Quote(s.ClaimPath("/p", "dev")))
	}
	release()
}

// ClaimHolder's probe holds the lock shared for a moment (`up` and `down`
// probe while a watch may be starting): a claim of a free target taken
// during a probe waits for the probe's end and succeeds.
func TestClaimSucceedsDuringAHolderProbe(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	release, _, ok, err := s.ClaimTarget("/p", "dev")
	if err != nil || !ok {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	release()
	probe := flock.New(s.ClaimPath("/p", "dev"))
	if got, err := probe.TryRLock(); err != nil || !got {
		t.Fatalf("probe: %v %v", got, err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = probe.Unlock()
	}()
	release, holder, ok, err := s.ClaimTarget("/p", "dev")
	if err != nil || !ok {
		t.Fatalf("claim of a free target during a probe: ok %v holder %d err %v", ok, holder, err)
	}
	release()
}

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl-C while `up` waits for the guest stops the VM it started and leaves
// no instance behind.
func TestInterruptDuringUpStopsTheVM(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": fmt.Sprintf("app \"a\" {\n  language = \"go\"\n  ports = [8080]\n}\ntarget \"dev\" {\n  provider = \"qemu\"\n  apps = [app.a]\n  qemu {\n    accel = \"tcg\"\n    host_ports = { 8080 = %d }\n  }\n}\n", freePort(t)),
		"go.mod":   goMod,
		"main.go":  helloSource("interrupted"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := p.command(ctx, "up")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.HasPrefix(sc.Text(), "deploy dev: started") {
			break
		}
	}
	// Let QEMU start, then interrupt as a terminal's Ctrl-C would.
	deadline := time.Now().Add(30 * time.Second)
	for len(qemuPIDs(p.stateDir)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(qemuPIDs(p.stateDir)) == 0 {
		t.Fatalf("QEMU never started; output so far:\n%s", strings.Join(seen, "\n"))
	}
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("up exited %d after Ctrl-C, want 130:\n%s", code, strings.Join(seen, "\n"))
	}
	if !strings.Contains(strings.Join(seen, "\n"), "interrupted") {
		t.Errorf("up did not say it was interrupted:\n%s", strings.Join(seen, "\n"))
	}
	if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
		t.Fatalf("QEMU still running after Ctrl-C: %v", pids)
	}
	for _, i := range p.ps() {
		if i.State == "running" || i.State == "starting" {
			t.Fatalf("instance left %s after Ctrl-C: %+v", i.State, i)
		}
	}
}

// Changing only an app's arguments re-packages it but does not recompile.
func TestArgsChangeRepackagesWithoutRecompiling(t *testing.T) {
	uf := "app \"a\" {\n  language = \"go\"\n  args = [%q]\n}\n"
	p := newProject(t, map[string]string{
		"Unikfile": fmt.Sprintf(uf, "one"),
		"go.mod":   goMod,
		"main.go":  exitSource,
	})
	p.cacheDir = t.TempDir()
	first := jsonField(p.ok("build", "--json").stdout, "digest")
	p.write("Unikfile", fmt.Sprintf(uf, "two"))
	r := p.ok("build", "--json")
	if !hasLine(r.stderr, "compile a", "up to date") || !hasLine(r.stderr, "package a", "done") {
		t.Fatalf("args change: want compile up to date and package done:\n%s", r.stderr)
	}
	if second := jsonField(r.stdout, "digest"); second == first {
		t.Fatal("the image digest did not change with the arguments")
	}
}

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

// Ctrl-C while `up` waits for the guest stops the VM it started and leaves
// no instance behind.
func TestInterruptDuringUpStopsTheVM(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(freePort(t), ""),
		"go.mod":   goMod,
		"main.go":  helloSource("interrupted"),
	})
	up := p.start("up")
	up.waitLine("deploy dev: started")
	// Let QEMU start, then interrupt as a terminal's Ctrl-C would.
	if !p.waitQEMUs(1) {
		t.Fatalf("QEMU never started; output so far:\n%s", up.output())
	}
	up.signal(syscall.SIGINT, false)
	if code := up.wait().ExitCode(); code != 130 {
		t.Fatalf("up exited %d after Ctrl-C, want 130:\n%s", code, up.output())
	}
	if !strings.Contains(up.output(), "interrupted") {
		t.Errorf("up did not say it was interrupted:\n%s", up.output())
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

const gracefulSource = `package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	go http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "up") }))
	fmt.Println("serving")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	fmt.Println("got SIGTERM, shutting down cleanly")
	os.Exit(0)
}
`

// Stopping an instance asks the app first: the guest's power button, then
// SIGTERM to the app, which may finish its work and exit.
func TestStopIsGracefulForTheApp(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(freePort(t), ""),
		"go.mod":   goMod,
		"main.go":  gracefulSource,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := p.command(ctx, "up", "--attach")
	stdout, _ := cmd.StdoutPipe()
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "serving") {
			break
		}
	}
	// Readiness is reported on stderr by then; give it a moment and stop.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "ready after") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	cmd.Wait()
	out := strings.Join(seen, "\n")
	if !strings.Contains(out, "got SIGTERM, shutting down cleanly") {
		t.Fatalf("the app was not asked to stop; console:\n%s\nstderr:\n%s", out, stderr.String())
	}
	if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
		t.Fatalf("QEMU still running: %v", pids)
	}
}

// An `up` killed with -9 while it boots a replacement leaves an orphan VM;
// ps does not mistake it for the running instance, and the next up removes
// it and completes the replacement on the right port.
func TestKilledReplacementIsCleanedUpByTheNextUp(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("v1"),
	})
	p.ok("up")
	p.write("main.go", helloSource("v2"))

	up := p.start("up")
	up.waitLine("deploy dev: a: booting image")
	p.waitQEMUs(2)
	time.Sleep(2 * time.Second) // let the new guest get ready on its temporary port
	up.signal(syscall.SIGKILL, true)
	up.wait()

	for _, i := range p.ps() {
		if i.State == "running" && len(i.Ports) == 1 && i.Ports[0].Host != port {
			t.Errorf("ps calls the orphan on a temporary port running: %+v", i)
		}
	}
	r := p.ok("up")
	if !strings.Contains(r.stdout, "dev/a: replaced") {
		t.Fatalf("up after a killed up: want the replacement completed:\n%s\n%s", r.stdout, r.stderr)
	}
	if got := get(t, port); !strings.Contains(got, "v2") {
		t.Fatalf("port %d answers %q, want v2", port, got)
	}
	if insts := p.ps(); len(insts) != 1 {
		t.Fatalf("want one instance, got %+v", insts)
	}
	if n := len(qemuPIDs(p.stateDir)); n != 1 {
		t.Fatalf("%d QEMU processes, want 1", n)
	}
}

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An app that listens on 9090 while the Unikfile declares 8080: up fails
// (exit 1) and says which port the app does listen on, while it waits and
// in the final error.
func TestReadinessErrorNamesThePortTheAppListensOn(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(freePort(t), ""),
		"go.mod":   goMod,
		"main.go":  serverSource("elsewhere", 9090),
	})
	r := p.run("up", "--timeout", "60s")
	if r.code != 1 {
		t.Fatalf("up of an app on another port: exit %d, want 1\n%s", r.code, r.stderr)
	}
	const said = "the app listens on 9090; the Unikfile declares 8080"
	if !strings.Contains(r.stderr, "guest error: "+said) {
		t.Errorf("up did not relay the init's line while waiting:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "did not print that it was ready; its init said: "+said) {
		t.Errorf("the timeout error does not quote the init:\n%s", r.stderr)
	}
	if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
		t.Errorf("QEMU left after the failed up: %v", pids)
	}
}

// init reads the port from the source, and says so; without one it says
// that it guessed.
func TestInitFindsThePortInTheSource(t *testing.T) {
	p := newProject(t, map[string]string{"go.mod": "module example.com/svc\n\ngo 1.22\n", "main.go": serverSource("svc", 9090)})
	r := p.ok("init")
	uf, err := os.ReadFile(filepath.Join(p.dir, "Unikfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(uf), "ports    = [9090]") {
		t.Errorf("init wrote:\n%s", uf)
	}
	if !strings.Contains(r.stdout, "Port 9090: http.ListenAndServe at main.go:") || strings.Contains(r.stderr, "guess") {
		t.Errorf("init did not say where the port came from:\n%s\n%s", r.stdout, r.stderr)
	}
	p.ok("validate")

	q := newProject(t, map[string]string{"go.mod": "module example.com/job\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() {}\n"})
	r = q.ok("init")
	if !strings.Contains(r.stderr, "port 8080 is a guess") {
		t.Errorf("init did not say it guessed:\n%s", r.stderr)
	}
}

// The guest renews its DHCP lease with QEMU's own DHCP server (its leases
// last 24 h, so unikfile.dhcp_t1 brings the renewal forward to 3 s): the
// server acknowledges, the address stays, the app goes on answering.
func TestGuestRenewsItsDHCPLease(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, `linux {
    cmdline = "unikfile.verbose unikfile.dhcp_t1=3 unikfile.ip=dhcp"
  }`),
		"go.mod":  goMod,
		"main.go": helloSource("renewed"),
	})
	p.ok("up")
	deadline := time.Now().Add(2 * time.Minute)
	var logs string
	for time.Now().Before(deadline) {
		logs = p.ok("logs", "a").stdout
		if strings.Count(logs, "dhcp: renewed 10.0.2.15 on eth0") >= 2 {
			break
		}
		time.Sleep(time.Second)
	}
	if n := strings.Count(logs, "dhcp: renewed 10.0.2.15 on eth0"); n < 2 {
		t.Fatalf("the guest did not renew its lease twice with QEMU's DHCP server:\n%s", logs)
	}
	if strings.Contains(logs, "unikfile-init: error: dhcp") || strings.Count(logs, "unikfile-init: address ") != 1 {
		t.Errorf("a renewal changed the address or failed:\n%s", logs)
	}
	if got := get(t, port); got != "renewed\n" {
		t.Fatalf("GET after the renewals = %q", got)
	}
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// flagServer answers -msg on -listen.
const flagServer = `package main

import (
	"flag"
	"fmt"
	"net/http"
)

func main() {
	msg := flag.String("msg", "", "answer")
	listen := flag.String("listen", ":8080", "address")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, *msg) })
	fmt.Println("serving", *msg, "on", *listen)
	fmt.Println(http.ListenAndServe(*listen, nil))
}
`

// Two apps built from one source share the compile and still run their own
// arguments; changing a target setting (a host port through a variable)
// redeploys only the app it touches; logs -f ends when the instance goes.
func TestSharedSourceSettingsChangeAndLogsFollow(t *testing.T) {
	needBoot(t)
	apiPort, webPort, newPort := freePort(t), freePort(t), freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": fmt.Sprintf(`
variable "api_port" {
  default = %d
}
app "api" {
  language = "go"
  args     = ["-msg", "I am api", "-listen", ":8080"]
  ports    = [8080]
}
app "web" {
  language = "go"
  args     = ["-msg", "I am web", "-listen", ":9090"]
  ports    = [9090]
}
target "dev" {
  provider = "qemu"
  apps     = [app.api, app.web]
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = var.api_port, 9090 = %d }
  }
}
`, apiPort, webPort),
		"go.mod":  goMod,
		"main.go": flagServer,
	})
	p.cacheDir = t.TempDir()
	r := p.ok("up")
	if n := strings.Count(r.stderr, "compile api: done") + strings.Count(r.stderr, "compile web: done"); n < 1 {
		t.Errorf("no compile ran:\n%s", r.stderr)
	}
	if got := get(t, apiPort); strings.TrimSpace(got) != "I am api" {
		t.Fatalf("api answered %q", got)
	}
	if got := get(t, webPort); strings.TrimSpace(got) != "I am web" {
		t.Fatalf("web answered %q", got)
	}
	before := p.ps()

	r = p.ok("up", "--var", fmt.Sprintf("api_port=%d", newPort))
	if !strings.Contains(r.stdout, "dev/api: replaced") || !strings.Contains(r.stdout, "dev/web: unchanged") {
		t.Fatalf("a new host port for api: want api replaced, web unchanged:\n%s", r.stdout)
	}
	if got := get(t, newPort); strings.TrimSpace(got) != "I am api" {
		t.Fatalf("api on its new port answered %q", got)
	}
	if byApp(p.ps(), "web").PID != byApp(before, "web").PID {
		t.Error("web was restarted by a change that only concerns api")
	}

	// logs -f follows until the instance is gone.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	follow := p.command(ctx, "logs", "-f", "web")
	var out bytes.Buffer
	follow.Stdout = &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	p.ok("down")
	if err := follow.Wait(); err != nil || ctx.Err() != nil {
		t.Fatalf("logs -f after down: %v (ctx %v)", err, ctx.Err())
	}
	if !strings.Contains(out.String(), "serving I am web on :9090") {
		t.Errorf("logs -f output lacks the app's line:\n%s", out.String())
	}
}

func TestPortTakenByAnotherProcess(t *testing.T) {
	needBoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("x"),
	})
	r := p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprint(port)) || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("up on a taken port: exit %d, want 1 naming port %d:\n%s", r.code, port, r.stderr)
	}
	if n := len(qemuPIDs(p.stateDir)); n != 0 {
		t.Fatalf("%d QEMU left after a refused up", n)
	}
}

func TestAppListeningOnLoopbackOnlyIsExplained(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(freePort(t), `args = ["-msg", "x", "-listen", "127.0.0.1:8080"]`),
		"go.mod":   goMod,
		"main.go":  flagServer,
	})
	r := p.run("up", "--timeout", "40s")
	if r.code != 1 {
		t.Fatalf("up of an app the host cannot reach: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "loopback address only") || !strings.Contains(r.stderr, "0.0.0.0:8080") {
		t.Fatalf("the error does not explain the loopback listener:\n%s", r.stderr)
	}
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/stages/compile"
)

// mirageProject is a project whose apps are built by the mirage fixture's
// MirageOS toolchain (a user sets UNIKFILE_MIRAGE_TOOLCHAIN the same way,
// or has mirage in PATH), with the fixture's example app fixtureApp
// (hello, tcp-echo) in web/.
func mirageProject(t *testing.T, unikfile, fixtureApp string) *project {
	t.Helper()
	if _, err := lookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing: run scripts/install-deps")
	}
	tc := testenv.MirageToolchain(t)
	files := map[string]string{"Unikfile": unikfile}
	src := testenv.MirageFixtureApp(t, fixtureApp)
	for _, name := range []string{"config.ml", "unikernel.ml"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		files["web/"+name] = string(b)
	}
	p := newProject(t, files)
	p.env = append(p.env, compile.MirageToolchainEnv+"="+tc)
	return p
}

// mirageWeb is a Unikfile with the fixture's TCP/HTTP example as app web
// on a qemu target, its HTTP port 8080 forwarded from host port port.
func mirageWeb(port int) string {
	return fmt.Sprintf(`app "web" {
  source   = "./web"
  language = "ocaml"
  base     = "mirage"
  args     = ["--http-port=8080"]
  ports    = [8080]
}
target "dev" {
  provider = "qemu"
  apps     = [app.web]
  qemu {
    host_ports = { 8080 = %d }
  }
}
`, port)
}

const mirageAnswer = "hello from a MirageOS unikernel"

// editAnswer returns the fixture's unikernel.ml answering msg instead.
func editAnswer(t *testing.T, p *project, msg string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, "web", "unikernel.ml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, old := range []string{mirageAnswer, "v0", "v1", "v2", "edited"} {
		if strings.Contains(src, `"`+old+`\n"`) {
			return strings.Replace(src, `"`+old+`\n"`, `"`+msg+`\n"`, 1)
		}
	}
	t.Fatalf("unikernel.ml has no answer to edit:\n%s", src)
	return ""
}

// The fixture's TCP/HTTP example through `unikfile up` on QEMU: it
// answers HTTP on the forwarded port, logs shows its console; a second up
// changes nothing; an edit of unikernel.ml replaces the instance with one
// that answers the edit; down stops it.
func TestMirageUp(t *testing.T) {
	port := freePort(t)
	p := mirageProject(t, mirageWeb(port), "tcp-echo")
	r := p.ok("up", "--timeout", "5m")
	if got := strings.TrimSpace(slowGet(t, port)); got != mirageAnswer {
		t.Errorf("GET :%d = %q, want %q", port, got, mirageAnswer)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("http://127.0.0.1:%d/", port)) {
		t.Errorf("up does not say where the app is:\n%s", r.stdout)
	}
	before := p.ps()
	if len(before) != 1 || before[0].State != "running" || before[0].App != "web" {
		t.Fatalf("ps after up: %+v\n%s", before, r.stderr)
	}
	logs := p.ok("logs", "web").stdout
	for _, w := range []string{"Solo5: Bindings version", "stack assembled: mac=", "ip=10.0.2.15", "listening: echo on 7, http on 8080", "http: connection from 10.0.2.2"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs web lacks %q:\n%s", w, logs)
		}
	}

	// No change: nothing rebuilt, nothing restarted.
	r = p.ok("up", "--timeout", "5m")
	if after := p.ps(); ids(after) != ids(before) {
		t.Errorf("a no-change up replaced the instance: %s, then %s\n%s", ids(before), ids(after), r.stderr)
	}
	if !strings.Contains(r.stdout, "Nothing changed") {
		t.Errorf("no-change up did not say so:\n%s", r.stdout)
	}
	for _, node := range []string{"compile web", "package web", "deploy dev"} {
		if !hasLine(r.stderr, node, "up to date") {
			t.Errorf("no-change up: %q not reported up to date:\n%s", node, r.stderr)
		}
	}

	// An edit of unikernel.ml replaces the instance.
	p.write("web/unikernel.ml", editAnswer(t, p, "edited"))
	r = p.ok("up", "--timeout", "5m")
	after := p.ps()
	if len(after) != 1 || after[0].ID == before[0].ID || after[0].State != "running" {
		t.Errorf("after the edit: %s, before %s\n%s", ids(after), ids(before), r.stderr)
	}
	if after[0].ImageDigest == before[0].ImageDigest {
		t.Errorf("the edit left the image digest %s", after[0].ImageDigest)
	}
	if got := strings.TrimSpace(slowGet(t, port)); got != "edited" {
		t.Errorf("after the edit GET = %q, want edited", got)
	}
	if processAlive(before[0].PID) {
		t.Errorf("the replaced instance's QEMU (pid %d) still runs", before[0].PID)
	}

	p.ok("down")
	if insts := p.ps(); len(insts) != 0 || len(qemuPIDs(p.stateDir)) != 0 {
		t.Errorf("after down: %+v, QEMU %v", insts, qemuPIDs(p.stateDir))
	}
	if _, err := fetch(port); err == nil {
		t.Error("the port still answers after down")
	}
}

// The fixture's console hello ends by itself: up --attach shows its
// console and exits with the unikernel's status (0, and 3 after an edit
// that exits 3), which ps shows; after a detached up, ps and logs show it
// ended with 3.
func TestMirageExitStatus(t *testing.T) {
	p := mirageProject(t, `app "web" {
  source   = "./web"
  language = "ocaml"
  base     = "mirage"
}
target "dev" {
  provider = "qemu"
  apps     = [app.web]
}
`, "hello")
	r := p.run("up", "--attach", "--timeout", "5m")
	if r.code != 0 || strings.Count(r.stdout, "INF [application] hello") != 4 {
		t.Fatalf("up --attach: exit %d, want 0 with four hellos\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if insts := p.ps(); len(insts) != 1 || insts[0].State != "exited" || insts[0].ExitStatus == nil || *insts[0].ExitStatus != 0 {
		t.Fatalf("ps after exit 0: %+v", insts)
	}

	b, err := os.ReadFile(filepath.Join(p.dir, "web", "unikernel.ml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "loop 4") {
		t.Fatalf("the fixture's hello changed:\n%s", b)
	}
	p.write("web/unikernel.ml", strings.Replace(string(b), "loop 4", "loop 1 >>= fun () -> exit 3", 1))
	r = p.run("up", "--attach", "--timeout", "5m")
	if r.code != 3 || !strings.Contains(r.stdout, "Solo5: solo5_exit(3) called") {
		t.Fatalf("up --attach: exit %d, want 3 with Solo5's exit line\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if insts := p.ps(); len(insts) != 1 || insts[0].State != "exited" || insts[0].ExitStatus == nil || *insts[0].ExitStatus != 3 {
		t.Fatalf("ps after exit 3: %+v", insts)
	}
	// Detached: a unikernel without ports is ready once it started; ps
	// then shows how it ended.
	p.ok("up", "--timeout", "5m")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		insts := p.ps()
		if len(insts) == 1 && insts[0].State == "exited" {
			if insts[0].ExitStatus == nil || *insts[0].ExitStatus != 3 {
				t.Fatalf("ps after a detached up: %+v, want exited (3)", insts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ps after a detached up: %+v, want exited (3)", insts)
		}
		time.Sleep(time.Second)
	}
	if logs := p.ok("logs", "web").stdout; !strings.Contains(logs, "Solo5: solo5_exit(3) called") {
		t.Errorf("logs web lacks the exit line:\n%s", logs)
	}
}

// watch on a MirageOS unikernel: a steady 20 requests/s through three
// edits of unikernel.ml sees no failed request, and after each swap the
// new version answers.
func TestMirageWatchSwapsWithoutFailedRequests(t *testing.T) {
	port := freePort(t)
	p := mirageProject(t, mirageWeb(port), "tcp-echo")
	w := p.startWatch()
	w.until("web: swapped")
	if got, err := fetch(port); err != nil || got != mirageAnswer {
		t.Fatalf("first version: %q, %v", got, err)
	}
	reqs := startRequests(port)
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf("v%d", i)
		p.saveByRename("web/unikernel.ml", editAnswer(t, p, want))
		w.until("web: swapped")
		if got, err := fetch(port); err != nil || got != want {
			t.Fatalf("after swap %d: %q, %v; want %s", i, got, err, want)
		}
	}
	reqs.stopAndCheck(t, 3, "v2")
	w.stop(syscall.SIGINT)
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

// rumpProject is a project whose apps are built on the rump base with the
// fixture's Rumprun toolchain (a user sets UNIKFILE_RUMPRUN_TOOLCHAIN the
// same way).
func rumpProject(t *testing.T, files map[string]string) *project {
	t.Helper()
	tc := testenv.RumprunToolchain(t)
	if _, err := lookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing: run scripts/install-deps")
	}
	p := newProject(t, files)
	p.env = append(p.env, "UNIKFILE_RUMPRUN_TOOLCHAIN="+tc)
	return p
}

// examples/rump through `unikfile up`: the C app (make) and the C++ app
// (CMake) answer HTTP, the C app also from a BIOS-bootable qcow2 disk; a
// second up changes nothing; an edit of the C source replaces the C app's
// instances only; logs show Rumprun's console; down leaves nothing.
func TestRumpExamplesUp(t *testing.T) {
	p := rumpProject(t, exampleFiles(t, "rump"))
	port := freePorts(t, 3)
	vars := []string{"--var", "port=" + strconv.Itoa(port), "--timeout", "5m"}
	r := p.ok(append([]string{"up"}, vars...)...)
	want := map[int]string{
		port:     "hello from C on Rumprun (argv[0] c, 1 args)",
		port + 1: "hello from C++ on Rumprun (request ",
		port + 2: "hello from C on Rumprun", // the qcow2 BIOS disk
	}
	for pt, w := range want {
		if got := slowGet(t, pt); !strings.Contains(got, w) {
			t.Errorf("GET :%d = %q, want %q", pt, got, w)
		}
	}
	before := instanceIDs(p.ps())
	if len(before) != 3 {
		t.Fatalf("ps after up: %v\n%s", before, r.stderr)
	}
	for _, i := range p.ps() {
		if i.State != "running" {
			t.Errorf("%s/%s is %s", i.Target, i.App, i.State)
		}
	}
	logs := p.ok("logs", "cpp").stdout
	for _, w := range []string{"NetBSD 7.99.34 (RUMP-ROAST)", `=== calling "cpp" main() ===`, "serving on :8081"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs cpp lacks %q:\n%s", w, logs)
		}
	}

	// No change: nothing rebuilt, nothing restarted.
	r = p.ok(append([]string{"up"}, vars...)...)
	if after := instanceIDs(p.ps()); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a no-change up replaced instances: %v, then %v\n%s", before, after, r.stderr)
	}
	if !strings.Contains(r.stdout, "Nothing changed") {
		t.Errorf("no-change up did not say so:\n%s", r.stdout)
	}
	for _, node := range []string{"compile c", "compile cpp", "package c", "package cpp", "deploy dev", "deploy disk"} {
		if !hasLine(r.stderr, node, "up to date") {
			t.Errorf("no-change up: %q not reported up to date:\n%s", node, r.stderr)
		}
	}

	// An edit of the C app replaces its two instances, and only those.
	src, err := os.ReadFile(filepath.Join(p.dir, "c", "server.c"))
	if err != nil {
		t.Fatal(err)
	}
	p.write("c/server.c", strings.Replace(string(src), `"hello from C"`, `"hello from edited C"`, 1)+"\n/* edited */\n")
	p.ok(append([]string{"up"}, vars...)...)
	after := instanceIDs(p.ps())
	for k, id := range before {
		changed := after[k] != id
		if strings.HasSuffix(k, "/c") != changed {
			t.Errorf("%s: instance %s then %s after editing the C source", k, id, after[k])
		}
	}
	if got := slowGet(t, port); !strings.Contains(got, "hello from C on Rumprun") {
		t.Errorf("after the edit: %q", got)
	}
	p.ok("down")
	if insts := p.ps(); len(insts) != 0 || len(qemuPIDs(p.stateDir)) != 0 {
		t.Errorf("after down: %+v, QEMU %v", insts, qemuPIDs(p.stateDir))
	}
}

// An app on Rumprun that exits: up --attach exits with its status (and
// stops the halted guest's QEMU), ps shows it, a detached up says it
// exited before it was ready; validate refuses Go on rump at the base
// line.
func TestRumpExitStatus(t *testing.T) {
	p := rumpProject(t, map[string]string{
		"Unikfile": `
app "quitter" {
  language = "c"
  base     = "rump"
  ports    = [` + fmt.Sprint(freePort(t)) + `]
}
target "dev" {
  provider = "qemu"
  apps     = [app.quitter]
}
`,
		"main.c": osvExitSource,
	})
	r := p.run("up", "--attach")
	if r.code != 3 || !strings.Contains(r.stdout, "about to exit with status 3") {
		t.Fatalf("up --attach: exit %d, want 3 with the app's output\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
		t.Errorf("the halted guest's QEMU still runs after up --attach returned: %v", pids)
	}
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "exited" || insts[0].ExitStatus == nil || *insts[0].ExitStatus != 3 {
		t.Fatalf("ps after exit 3: %+v", insts)
	}
	r = p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, "exited with status 3 before it was ready") {
		t.Fatalf("up: exit %d, want 1 saying it exited:\n%s", r.code, r.stderr)
	}
	if r.elapsed > 90*time.Second {
		t.Errorf("up took %v to see the exit", r.elapsed)
	}

	p.write("Unikfile", `
app "go" {
  language = "go"
  base     = "rump"
}
`)
	r = p.run("validate")
	if r.code == 0 || !strings.Contains(r.stderr, "Base rump does not run language go") || !strings.Contains(r.stderr, `written in c, cpp`) || !strings.Contains(r.stderr, "Unikfile:4") {
		t.Fatalf("validate: exit %d\n%s", r.code, r.stderr)
	}
}

// versionSource is a C HTTP server for Rumprun answering msg.
func versionSource(msg string) string {
	return `#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) { perror("listen"); return 1; }
	for (;;) {
		char buf[2048], resp[256];
		int c = accept(s, NULL, NULL);
		if (c < 0) continue;
		if (read(c, buf, sizeof buf) > 0) {
			int n = snprintf(resp, sizeof resp, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", (int)strlen("` + msg + `"), "` + msg + `");
			write(c, resp, n);
		}
		close(c);
	}
}
`
}

// watch on Rumprun: a steady 20 requests/s through three edits sees no
// failed request, and after each swap the new version answers.
func TestRumpWatchSwapsWithoutFailedRequests(t *testing.T) {
	port := freePort(t)
	p := rumpProject(t, map[string]string{
		"Unikfile": fmt.Sprintf(`app "a" {
  language = "c"
  base     = "rump"
  ports    = [8080]
}
target "dev" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    host_ports = { 8080 = %d }
  }
}
`, port),
		"main.c": versionSource("v0"),
	})
	w := p.startWatch()
	w.until("a: swapped")
	if got, err := fetch(port); err != nil || got != "v0" {
		t.Fatalf("first version: %q, %v", got, err)
	}
	reqs := startRequests(port)
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("v%d", i)
		p.saveByRename("main.c", versionSource(want))
		w.until("a: swapped")
		if got, err := fetch(port); err != nil || got != want {
			t.Fatalf("after swap %d: %q, %v; want %s", i, got, err, want)
		}
	}
	reqs.stopAndCheck(t, 3, "v3")
	w.stop(syscall.SIGINT)
}

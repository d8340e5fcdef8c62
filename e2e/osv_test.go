package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
)

// osvProject is a project whose apps boot on the osv base with the
// fixture's OSv kernel (a user sets UNIKFILE_OSV_KERNEL the same way).
func osvProject(t *testing.T, files map[string]string) *project {
	t.Helper()
	kernelDir := testenv.Fixture(t, "osv")
	if _, err := lookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing: run scripts/install-deps")
	}
	p := newProject(t, files)
	p.env = append(p.env, "UNIKFILE_OSV_KERNEL="+kernelDir)
	return p
}

// instanceIDs maps target/app to instance ID.
func instanceIDs(insts []instance) map[string]string {
	m := map[string]string{}
	for _, i := range insts {
		m[i.Target+"/"+i.App] = i.ID
	}
	return m
}

// examples/osv through `unikfile up`: Go, C and Python on OSv answer HTTP,
// and the C app also from a BIOS-bootable qcow2 disk; a second up changes
// nothing; an edit of the C source replaces the C app's instances only;
// logs show OSv's console.
func TestOSvExamplesUp(t *testing.T) {
	p := osvProject(t, exampleFiles(t, "osv"))
	port := freePorts(t, 4)
	vars := []string{"--var", "port=" + strconv.Itoa(port), "--timeout", "5m"}
	r := p.ok(append([]string{"up"}, vars...)...)
	want := map[int]string{
		port:     "hello from Go (go",
		port + 1: "hello from C on OSv",
		port + 2: "hello from Python on OSv",
		port + 3: "hello from C on OSv", // the qcow2 BIOS disk
	}
	for pt, w := range want {
		if got := slowGet(t, pt); !strings.Contains(got, w) {
			t.Errorf("GET :%d = %q, want %q", pt, got, w)
		}
	}
	if got := slowGet(t, port); !strings.Contains(got, "on v0.57.0") {
		t.Errorf("the Go app does not see OSv's OSV_VERSION: %q", got)
	}
	before := instanceIDs(p.ps())
	if len(before) != 4 {
		t.Fatalf("ps after up: %v\n%s", before, r.stderr)
	}
	for _, i := range p.ps() {
		if i.State != "running" {
			t.Errorf("%s/%s is %s", i.Target, i.App, i.State)
		}
	}
	logs := p.ok("logs", "python").stdout
	for _, w := range []string{"OSv v0.57.0", "Cmdline: /", "serving on :8082"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs python lacks %q:\n%s", w, logs)
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
	for _, node := range []string{"compile go", "compile c", "compile python", "package c", "deploy dev", "deploy disk"} {
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
	if got := slowGet(t, port+1); !strings.Contains(got, "hello from C on OSv") {
		t.Errorf("after the edit: %q", got)
	}
	p.ok("down")
	if insts := p.ps(); len(insts) != 0 || len(qemuPIDs(p.stateDir)) != 0 {
		t.Errorf("after down: %+v, QEMU %v", insts, qemuPIDs(p.stateDir))
	}
}

const osvExitSource = `#include <stdio.h>
#include <stdlib.h>
int main(void) {
	printf("about to exit with status 3\n");
	fflush(stdout);
	exit(3);
}
`

// An app on OSv that exits: up --attach exits with its status, ps shows
// it, and a detached up says it exited before it was ready.
func TestOSvExitStatus(t *testing.T) {
	p := osvProject(t, map[string]string{
		"Unikfile": `
app "quitter" {
  language = "c"
  base     = "osv"
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
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "exited" || insts[0].ExitStatus == nil || *insts[0].ExitStatus != 3 {
		t.Fatalf("ps after exit 3: %+v", insts)
	}
	r = p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, "exited with status 3 before it was ready") {
		t.Fatalf("up: exit %d, want 1 saying it exited:\n%s", r.code, r.stderr)
	}
}

// watch on OSv: a steady 20 requests/s through three edits sees no failed
// request, and after each swap the new version answers.
func TestOSvWatchSwapsWithoutFailedRequests(t *testing.T) {
	port := freePort(t)
	p := osvProject(t, map[string]string{
		"Unikfile": fmt.Sprintf(`app "a" {
  language = "go"
  base     = "osv"
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
		"go.mod":  goMod,
		"main.go": helloSource("v0"),
	})
	w := p.startWatch()
	w.until("a: swapped")
	if got, err := fetch(port); err != nil || got != "v0" {
		t.Fatalf("first version: %q, %v", got, err)
	}
	reqs := startRequests(port)
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("v%d", i)
		p.saveByRename("main.go", helloSource(want))
		w.until("a: swapped")
		if got, err := fetch(port); err != nil || got != want {
			t.Fatalf("after swap %d: %q, %v; want %s", i, got, err, want)
		}
	}
	reqs.stopAndCheck(t, 3, "v3")
	w.stop(syscall.SIGINT)
}

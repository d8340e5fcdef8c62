package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpIsIncrementalAndDownCleansUp(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": fmt.Sprintf(`
app "hello" {
  source   = "."
  language = "go"
  ports    = [8080]
}
app "other" {
  source   = "./other"
  language = "go"
  ports    = [9090]
}
target "dev" {
  provider = "qemu"
  apps     = [app.hello, app.other]
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d, 9090 = %d }
  }
}
`, port, freePort(t)),
		"go.mod":        goMod,
		"main.go":       helloSource("hello v1"),
		"other/go.mod":  goMod,
		"other/main.go": serverSource("other v1", 9090),
	})
	p.cacheDir = t.TempDir() // this test checks what is rebuilt

	r := p.ok("up")
	if !strings.Contains(r.stdout, fmt.Sprintf("http://127.0.0.1:%d/", port)) {
		t.Errorf("up did not print the URL:\n%s", r.stdout)
	}
	if got := get(t, port); !strings.Contains(got, "hello v1") {
		t.Fatalf("GET = %q", got)
	}
	before := p.ps()
	if len(before) != 2 {
		t.Fatalf("ps: want 2 instances, got %+v", before)
	}
	for _, i := range before {
		if i.State != "running" || i.ImageDigest == "" || i.PID == 0 {
			t.Fatalf("instance %+v", i)
		}
	}
	logs := p.ok("logs", "hello").stdout
	if !strings.Contains(logs, "serving on :8080") {
		t.Errorf("logs hello lacks the app's output:\n%s", logs)
	}

	// Nothing changed: nothing rebuilt, nothing restarted.
	r = p.ok("up")
	if !strings.Contains(r.stdout, "Nothing changed") {
		t.Errorf("no-change up did not say so:\n%s", r.stdout)
	}
	for _, node := range []string{"compile hello", "compile other", "package hello", "deploy dev"} {
		if !hasLine(r.stderr, node, "up to date") {
			t.Errorf("no-change up: %q not reported up to date:\n%s", node, r.stderr)
		}
	}
	same := p.ps()
	if ids(same) != ids(before) || pids(same) != pids(before) {
		t.Fatalf("no-change up restarted something: before %v/%v after %v/%v", ids(before), pids(before), ids(same), pids(same))
	}

	// Edit one app: only it is rebuilt and replaced.
	p.write("main.go", helloSource("hello v2"))
	r = p.ok("up")
	if !hasLine(r.stderr, "compile hello", "done") || !hasLine(r.stderr, "compile other", "up to date") {
		t.Errorf("edit of hello: want hello compiled and other up to date:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "dev/hello: replaced") || !strings.Contains(r.stdout, "dev/other: unchanged") {
		t.Errorf("edit of hello: want hello replaced, other unchanged:\n%s", r.stdout)
	}
	if got := get(t, port); !strings.Contains(got, "hello v2") {
		t.Fatalf("after edit GET = %q", got)
	}
	after := p.ps()
	if len(after) != 2 {
		t.Fatalf("after replace: want 2 instances, got %+v", after)
	}
	if byApp(after, "other").PID != byApp(before, "other").PID {
		t.Error("the unchanged app was restarted")
	}
	if old := byApp(before, "hello").PID; processAlive(old) {
		t.Errorf("the replaced instance's QEMU (pid %d) is still running", old)
	}

	p.ok("down")
	if left := p.ps(); len(left) != 0 {
		t.Fatalf("after down: %+v", left)
	}
	if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
		t.Fatalf("QEMU still running after down: %v", pids)
	}
}

func hasLine(out, node, word string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, node) && strings.Contains(l, word) {
			return true
		}
	}
	return false
}

func ids(is []instance) string {
	var s []string
	for _, i := range is {
		s = append(s, i.ID)
	}
	return strings.Join(s, ",")
}

func pids(is []instance) string {
	var s []string
	for _, i := range is {
		s = append(s, fmt.Sprint(i.PID))
	}
	return strings.Join(s, ",")
}

func byApp(is []instance, app string) instance {
	for _, i := range is {
		if i.App == app {
			return i
		}
	}
	return instance{}
}

// processAlive reports whether pid runs; a zombie (its parent has not
// reaped it yet) has an empty command line and counts as gone.
func processAlive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", fmt.Sprint(pid), "cmdline"))
	return err == nil && len(b) > 0
}

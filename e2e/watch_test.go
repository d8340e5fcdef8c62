package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watching is a running `unikfile watch` whose stderr (one line per event)
// the test follows.
type watching struct {
	*running
	p *project
}

// startWatch runs `unikfile watch` with a generous deadline: under TCG on a
// loaded machine every boot can take tens of seconds.
func (p *project) startWatch(args ...string) *watching {
	p.t.Helper()
	return p.startWatchArgs(append([]string{"watch"}, args...)...)
}

// startWatchArgs runs unikfile with args (a watch: `watch` or `up --watch`).
func (p *project) startWatchArgs(args ...string) *watching {
	p.t.Helper()
	w := &watching{running: p.startFor(10*time.Minute, args...), p: p}
	p.t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.signal(syscall.SIGINT, false)
			w.wait()
		}
	})
	return w
}

// until reads events until a line starts with prefix and returns the lines
// read on the way (including it). A line saying the build or the boot of
// the app failed, when not waited for, fails the test.
func (w *watching) until(prefix string) []string {
	w.t.Helper()
	return w.untilLine(prefix, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

func (w *watching) untilLine(prefix string, match func(string) bool) []string {
	w.t.Helper()
	var lines []string
	for w.sc.Scan() {
		l := w.sc.Text()
		w.seen = append(w.seen, l)
		lines = append(lines, l)
		if match(l) {
			return lines
		}
		if strings.Contains(l, "boot failed") || (strings.Contains(l, "build failed") && !strings.Contains(prefix, "build failed")) {
			w.t.Fatalf("waiting for %q: %s\n%s", prefix, l, w.output())
		}
	}
	w.t.Fatalf("watch ended before printing %q:\n%s", prefix, w.output())
	return nil
}

// stop sends SIGINT and checks what the user would: exit status 0, no QEMU
// of this test left, no instance in ps, no run directory left.
func (w *watching) stop(sig syscall.Signal) {
	w.t.Helper()
	w.signal(sig, false)
	if code := w.wait().ExitCode(); code != 0 {
		w.t.Fatalf("watch exited %d after %v, want 0:\n%s", code, sig, w.output())
	}
	if pids := qemuPIDs(w.p.stateDir); len(pids) != 0 {
		w.t.Fatalf("QEMU of this test still running after %v: %v", sig, pids)
	}
	if insts := w.p.ps(); len(insts) != 0 {
		w.t.Fatalf("ps shows instances after watch ended: %+v", insts)
	}
	if ents, _ := os.ReadDir(filepath.Join(w.p.stateDir, "instances")); len(ents) != 0 {
		w.t.Fatalf("run directories left: %v", ents)
	}
}

// saveByRename writes name as IDEs and vim (with backupcopy=no) do: a new
// file renamed over the old one.
func (p *project) saveByRename(name, content string) {
	p.t.Helper()
	tmp := filepath.Join(p.dir, name+"___jb_tmp___") // a JetBrains IDE's safe write
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, name)); err != nil {
		p.t.Fatal(err)
	}
}

var noKeepAlive = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func fetch(port int) (string, error) {
	resp, err := noKeepAlive.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), err
}

// seenChangeBeforeBuild reports whether a "change:" line naming file comes
// before the first "build started" line. (The previous swap's "stopped"
// line may come first: the old VM stops after its connections drain.)
func seenChangeBeforeBuild(lines []string, file string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "change: ") && strings.Contains(l, file) {
			return true
		}
		if strings.Contains(l, "build started") {
			return false
		}
	}
	return false
}

// A steady 20 requests/s through five edits (each saved by rename, as vim
// does) sees no failed request, and after each swap the new version
// answers. Ctrl-C then stops everything and exits 0.
func TestWatchSwapsWithoutFailedRequests(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("v0"),
	})
	w := p.startWatch()
	w.until("a: swapped")
	if got, err := fetch(port); err != nil || got != "v0" {
		t.Fatalf("first version: %q, %v", got, err)
	}

	reqs := startRequests(port)
	for i := 1; i <= 5; i++ {
		want := fmt.Sprintf("v%d", i)
		p.saveByRename("main.go", helloSource(want))
		lines := w.until("a: swapped")
		if !seenChangeBeforeBuild(lines, "main.go") {
			t.Fatalf("edit %d: the change to main.go was not reported before the build:\n%s", i, strings.Join(lines, "\n"))
		}
		if got, err := fetch(port); err != nil || got != want {
			t.Fatalf("after swap %d: %q, %v; want %s", i, got, err, want)
		}
	}
	reqs.stopAndCheck(t, 5, "v5")
	w.stop(syscall.SIGINT)
}

// bigSource is a Go file that takes the compiler seconds: a build of it is
// still compiling when the next edit arrives. unique names it, so that no
// earlier build in the test cache holds it.
func bigSource(unique string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// %s\npackage main\n\nvar big = []string{\n", unique)
	for i := range 200000 {
		fmt.Fprintf(&b, "\t%q,\n", strconv.Itoa(i*7919))
	}
	b.WriteString("}\n")
	return b.String()
}

// A burst of 100 saves gives at most two builds; an edit during a build
// cancels it; a broken edit and a broken Unikfile are reported and the old
// version keeps answering; up refuses the watched target; SIGTERM stops all.
func TestWatchBurstCancelAndBrokenEdits(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("start"),
	})
	w := p.startWatch()
	w.until("a: swapped")

	// up must not fight watch over the target.
	r := p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, "served by `unikfile watch`") || !strings.Contains(r.stderr, "stop the watch") {
		t.Fatalf("up on a watched target: exit %d, want 1 and a message saying watch serves it:\n%s", r.code, r.stderr)
	}
	// Nor may down take its VMs away from it.
	if r := p.run("down"); r.code != 1 || !strings.Contains(r.stderr, "served by `unikfile watch`") {
		t.Fatalf("down on a watched target: exit %d, want 1 and a message saying watch serves it:\n%s", r.code, r.stderr)
	}

	// 100 writes in a burst.
	for i := range 100 {
		p.write("main.go", helloSource(fmt.Sprintf("burst %d", i)))
	}
	lines := w.until("a: swapped")
	builds := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "a: build started") {
			builds++
		}
	}
	if builds < 1 || builds > 2 {
		t.Fatalf("100 writes gave %d builds, want 1 or 2:\n%s", builds, strings.Join(lines, "\n"))
	}
	if got, err := fetch(port); err != nil || got != "burst 99" {
		t.Fatalf("after the burst: %q, %v; want burst 99", got, err)
	}

	// An edit during a build cancels it: big.go takes the compiler seconds;
	// once a compiler runs in the project, the next edit must cancel it.
	p.saveByRename("big.go", bigSource(p.dir))
	deadline := time.Now().Add(2 * time.Minute)
	for !compilerRuns(p.dir, w.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("no compiler ran in %s after big.go was saved:\n%s", p.dir, w.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(filepath.Join(p.dir, "big.go"))
	p.saveByRename("main.go", helloSource("after cancel"))
	lines = w.until("a: swapped")
	cancel := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "a: build cancelled") })
	if cancel < 0 {
		t.Fatalf("the edit during the build did not cancel it:\n%s", w.output())
	}
	// Between the cancelled build's start and its cancellation, nothing booted.
	for i := cancel - 1; i >= 0 && !strings.HasPrefix(lines[i], "a: build started"); i-- {
		if strings.HasPrefix(lines[i], "a: booting") {
			t.Fatalf("the cancelled build went on to boot:\n%s", w.output())
		}
	}
	if got, err := fetch(port); err != nil || got != "after cancel" {
		t.Fatalf("after the cancelled build: %q, %v", got, err)
	}
	// Saving the same content again rebuilds to the image that serves:
	// nothing reboots.
	p.saveByRename("main.go", helloSource("after cancel"))
	for _, l := range w.until("a: unchanged") {
		if strings.HasPrefix(l, "a: booting") {
			t.Fatalf("an unchanged image booted again:\n%s", w.output())
		}
	}
	// The cancelled compiler is gone: nothing but watch itself works in the
	// project directory.
	if left := processesIn(p.dir, w.cmd.Process.Pid); len(left) > 0 {
		t.Fatalf("processes of the cancelled build still run in %s: %v", p.dir, left)
	}

	// A broken edit: reported, the old version keeps answering.
	p.saveByRename("main.go", "package main\n\nfunc main() {\n")
	lines = w.until("a: build failed")
	w.until("  ./main.go:")
	if !strings.Contains(lines[len(lines)-1], "keeps serving") {
		t.Fatalf("the failure does not say the old version keeps serving: %s", lines[len(lines)-1])
	}
	if got, err := fetch(port); err != nil || got != "after cancel" {
		t.Fatalf("after a broken edit: %q, %v; want the old version", got, err)
	}

	// A broken Unikfile: reported, not fatal.
	p.saveByRename("Unikfile", "app \"a\" {\n  language = \"go\"\n  bogus = 1\n}\n")
	w.until("Unikfile error")
	w.untilLine("Unikfile:3:3", func(l string) bool { return strings.Contains(l, "Unikfile:3:3") })
	if got, err := fetch(port); err != nil || got != "after cancel" {
		t.Fatalf("after a broken Unikfile: %q, %v; want the old version", got, err)
	}
	// Fixing both brings the new version.
	p.saveByRename("main.go", helloSource("fixed"))
	p.saveByRename("Unikfile", qemuApp(port, ""))
	w.until("a: swapped")
	if got, err := fetch(port); err != nil || got != "fixed" {
		t.Fatalf("after the fixes: %q, %v", got, err)
	}
	w.stop(syscall.SIGTERM)
}

// watch refuses a target that `up` runs, and says what to do.
func TestWatchRefusesATargetUpRuns(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("up"),
	})
	p.ok("up")
	r := p.run("watch")
	if r.code != 1 || !strings.Contains(r.stderr, "started by `unikfile up`") || !strings.Contains(r.stderr, "unikfile down dev") {
		t.Fatalf("watch over up: exit %d, want 1 and what to do:\n%s", r.code, r.stderr)
	}
	if got := get(t, port); got != "up\n" {
		t.Fatalf("up's instance answers %q after the refused watch", got)
	}
	// After down, `up --watch` is watch: it serves the port, and a second
	// watch is refused while it runs.
	p.ok("down")
	w := p.startWatchArgs("up", "--watch")
	w.until("a: swapped")
	if got, err := fetch(port); err != nil || got != "up" {
		t.Fatalf("up --watch: %q, %v", got, err)
	}
	r = p.run("watch")
	if r.code != 1 || !strings.Contains(r.stderr, "already watched by another `unikfile watch`") {
		t.Fatalf("a second watch: exit %d:\n%s", r.code, r.stderr)
	}
	w.stop(syscall.SIGINT)
}

// Errors before anything boots: no QEMU target, a taken host port.
func TestWatchStartErrors(t *testing.T) {
	p := newProject(t, map[string]string{
		"Unikfile": "app \"a\" {\n  language = \"go\"\n}\n",
		"go.mod":   goMod,
		"main.go":  helloSource("x"),
	})
	r := p.run("watch")
	if r.code != 1 || !strings.Contains(r.stderr, `no target with provider "qemu"`) {
		t.Fatalf("watch without a target: exit %d:\n%s", r.code, r.stderr)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	p.write("Unikfile", qemuApp(taken, ""))
	r = p.run("watch")
	if r.code != 1 || !strings.Contains(r.stderr, "already in use") || !strings.Contains(r.stderr, strconv.Itoa(taken)) {
		t.Fatalf("watch on a taken port: exit %d:\n%s", r.code, r.stderr)
	}
	p.write("Unikfile", "app \"a\" {\n  language = \"go\"\n  bogus = 1\n}\n")
	r = p.run("watch")
	if r.code != 1 || !strings.Contains(r.stderr, "Unsupported argument") || !strings.Contains(r.stderr, "Unikfile:3") {
		t.Fatalf("watch with a bad Unikfile: exit %d:\n%s", r.code, r.stderr)
	}
}

// processesIn lists the processes (pid and command) whose working directory
// is dir, except the one given.
// compilerRuns reports whether a Go compiler process works in dir.
func compilerRuns(dir string, except int) bool {
	return slices.ContainsFunc(processesIn(dir, except), func(p string) bool {
		return strings.Contains(p, "/compile ") || strings.Contains(p, " build ")
	})
}

func processesIn(dir string, except int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || cwd != dir {
			continue
		}
		cl, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+" "+strings.ReplaceAll(string(cl), "\x00", " "))
	}
	return out
}

// Only the app whose source changed is rebuilt and swapped; the other keeps
// its VM. A Unikfile edit that changes one app's arguments swaps only it.
func TestWatchRebuildsOnlyTheChangedApp(t *testing.T) {
	needBoot(t)
	pa, pb := freePort(t), freePort(t)
	unikfile := func(bArg string) string {
		return fmt.Sprintf(`app "a" {
  source   = "a"
  language = "go"
  ports    = [8080]
}
app "b" {
  source   = "b"
  language = "go"
  ports    = [8081]
  args     = [%q]
}
target "dev" {
  provider = "qemu"
  apps     = [app.a, app.b]
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d, 8081 = %d }
  }
}
`, bArg, pa, pb)
	}
	p := newProject(t, map[string]string{
		"Unikfile":  unikfile("one"),
		"a/go.mod":  goMod,
		"a/main.go": serverSource("a1", 8080),
		"b/go.mod":  goMod,
		"b/main.go": serverSource("b1", 8081),
	})
	w := p.startWatch()
	swapped := map[string]bool{}
	w.untilLine("a and b swapped", func(l string) bool {
		for _, app := range []string{"a", "b"} {
			if strings.HasPrefix(l, app+": swapped") {
				swapped[app] = true
			}
		}
		return swapped["a"] && swapped["b"]
	})
	idOf := func(app string) string {
		for _, i := range p.ps() {
			if i.App == app {
				return i.ID
			}
		}
		t.Fatalf("no instance of %s in ps", app)
		return ""
	}
	aID := idOf("a")

	p.saveByRename("b/main.go", serverSource("b2", 8081))
	lines := w.until("b: swapped")
	for _, l := range lines {
		if strings.HasPrefix(l, "a: ") {
			t.Fatalf("an edit of b touched a: %q\n%s", l, strings.Join(lines, "\n"))
		}
	}
	if got, err := fetch(pb); err != nil || got != "b2" {
		t.Fatalf("b after its edit: %q, %v", got, err)
	}
	if got, err := fetch(pa); err != nil || got != "a1" {
		t.Fatalf("a after b's edit: %q, %v", got, err)
	}
	if idOf("a") != aID {
		t.Fatal("a's VM was replaced by an edit of b")
	}

	p.saveByRename("Unikfile", unikfile("two"))
	lines = w.until("b: swapped")
	for _, l := range lines {
		if strings.HasPrefix(l, "a: ") {
			t.Fatalf("a Unikfile edit of b's args touched a: %q\n%s", l, strings.Join(lines, "\n"))
		}
	}
	if idOf("a") != aID {
		t.Fatal("a's VM was replaced by an edit of b's arguments")
	}
	w.stop(syscall.SIGINT)
}

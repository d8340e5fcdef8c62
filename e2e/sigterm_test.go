package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/state"
)

// promptly is how soon a command must end after SIGTERM, whatever it is
// blocked on (generous: the machines that run this are loaded).
const promptly = 10 * time.Second

// waitContains reads stderr until a line contains s.
func (r *running) waitContains(s string) {
	r.t.Helper()
	for r.sc.Scan() {
		r.seen = append(r.seen, r.sc.Text())
		if strings.Contains(r.sc.Text(), s) {
			return
		}
	}
	r.t.Fatalf("unikfile ended before printing %q:\n%s", s, r.output())
}

// terminate sends SIGTERM to the command alone (as `kill` or a service
// manager would) and checks that it ends within promptly with code.
func (r *running) terminate(code int) time.Duration {
	r.t.Helper()
	start := time.Now()
	r.signal(syscall.SIGTERM, false)
	done := make(chan *os.ProcessState, 1)
	go func() { done <- r.wait() }()
	select {
	case st := <-done:
		took := time.Since(start)
		if st.ExitCode() != code {
			r.t.Fatalf("exit %d after SIGTERM, want %d:\n%s", st.ExitCode(), code, r.output())
		}
		r.t.Logf("ended %s after SIGTERM", took.Round(10*time.Millisecond))
		return took
	case <-time.After(promptly):
		r.signal(syscall.SIGKILL, true)
		r.t.Fatalf("still running %s after SIGTERM:\n%s", promptly, r.output())
	}
	return 0
}

func realDir(t *testing.T, dir string) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// SIGTERM ends every command promptly, whatever it waits for: what it
// started is stopped, and nothing it was making is left half done.
func TestSIGTERMEndsEveryCommandPromptly(t *testing.T) {
	// Up waiting for the project's lock.
	t.Run("lock", func(t *testing.T) {
		p := newProject(t, map[string]string{"Unikfile": qemuApp(freePort(t), ""), "go.mod": goMod, "main.go": helloSource("lock")})
		st, err := state.Open(p.stateDir)
		if err != nil {
			t.Fatal(err)
		}
		unlock, err := st.Lock(context.Background(), realDir(t, p.dir))
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		up := p.start("up")
		up.waitContains("waiting for another unikfile on this project")
		up.terminate(130)
		if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
			t.Fatalf("QEMU started: %v", pids)
		}
	})

	// Kernel fetch while apt downloads.
	t.Run("fetch", func(t *testing.T) {
		p := newProject(t, nil)
		p.cacheDir = t.TempDir()
		bin, mark := t.TempDir(), filepath.Join(t.TempDir(), "pid")
		// apt-cache stands in for a slow mirror: it never answers.
		script := "#!/bin/sh\necho $$ > " + mark + "\nexec sleep 6001\n"
		if err := os.WriteFile(filepath.Join(bin, "apt-cache"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		p.env = append(p.env, "PATH="+bin+":"+os.Getenv("PATH"))
		f := p.start("kernel", "fetch")
		pid := waitPIDFile(t, mark)
		f.terminate(130)
		if alive(pid) {
			t.Fatalf("apt-cache (pid %d) still runs after unikfile ended", pid)
		}
		if ents, _ := os.ReadDir(filepath.Join(p.cacheDir, "kernels")); len(ents) != 0 {
			t.Fatalf("the interrupted fetch left %v in the cache", ents)
		}
	})

	// Build connecting to a buildkitd that does not answer.
	t.Run("buildkit", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 8)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c // held open, never answered
			}
		}()
		p := newProject(t, map[string]string{"Unikfile": "app \"a\" {\n  language = \"go\"\n}\n", "go.mod": goMod, "main.go": helloSource("bk")})
		p.env = append(p.env, "UNIKFILE_BUILDKIT_HOST=tcp://"+l.Addr().String())
		b := p.start("build", "--executor", "buildkit")
		select {
		case c := <-accepted:
			defer c.Close()
		case <-time.After(2 * time.Minute):
			t.Fatalf("unikfile never connected:\n%s", b.output())
		}
		b.terminate(130)
	})

	// Build while go compiles.
	t.Run("compile", func(t *testing.T) {
		p := newProject(t, map[string]string{"Unikfile": "app \"a\" {\n  language = \"go\"\n}\n", "go.mod": goMod, "main.go": helloSource("big"), "big.go": bigSource(t.Name() + time.Now().String())})
		p.cacheDir = t.TempDir()
		b := p.start("build")
		b.waitLine("compile a: started")
		deadline := time.Now().Add(time.Minute)
		for !compilerRuns(p.dir, 0) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		b.terminate(130)
		time.Sleep(500 * time.Millisecond)
		if compilerRuns(p.dir, 0) {
			t.Fatalf("the compiler still runs after unikfile ended: %v", processesIn(p.dir, 0))
		}
		if ents, _ := os.ReadDir(filepath.Join(p.cacheDir, "objects", "bundles")); len(ents) != 0 {
			t.Fatalf("the interrupted compile left a bundle: %v", ents)
		}
	})

	// Images prune waiting for a build.
	t.Run("prune", func(t *testing.T) {
		p := newProject(t, nil)
		p.cacheDir = t.TempDir()
		cs, err := cache.Open(p.cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		release, err := cs.Hold(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		pr := p.start("images", "prune")
		pr.waitContains("waiting for the builds that use the cache")
		pr.terminate(130)
	})

	// Up waiting for a guest that never gets ready.
	t.Run("boot", func(t *testing.T) {
		needBoot(t)
		p := newProject(t, map[string]string{"Unikfile": qemuApp(freePort(t), ""), "go.mod": goMod, "main.go": sleeperSource})
		up := p.start("up")
		up.waitLine("deploy dev: started")
		if !p.waitQEMUs(1) {
			t.Fatalf("QEMU never started:\n%s", up.output())
		}
		time.Sleep(2 * time.Second)
		up.terminate(130)
		if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
			t.Fatalf("QEMU still running: %v", pids)
		}
		for _, i := range p.ps() {
			if i.State == "running" || i.State == "starting" {
				t.Fatalf("instance left %s: %+v", i.State, i)
			}
		}
	})

	// Logs -f and down of a guest that ignores SIGTERM.
	t.Run("logs+down", func(t *testing.T) {
		needBoot(t)
		p := newProject(t, map[string]string{"Unikfile": qemuApp(freePort(t), ""), "go.mod": goMod, "main.go": stubbornSource})
		p.ok("up")
		logs := p.start("logs", "-f", "a")
		time.Sleep(2 * time.Second)
		logs.terminate(0)
		// down presses the power button; the app ignores SIGTERM, so the
		// guest would wait 10 s before its SIGKILL: SIGTERM cuts it short.
		down := p.start("down")
		deadline := time.Now().Add(time.Minute)
		for !consoleSays(p.stateDir, "power button: stopping the app") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		took := down.terminate(0)
		if took > 8*time.Second {
			t.Errorf("down took %s after SIGTERM", took)
		}
		if pids := qemuPIDs(p.stateDir); len(pids) != 0 {
			t.Fatalf("QEMU still running after down: %v", pids)
		}
		if insts := p.ps(); len(insts) != 0 {
			t.Fatalf("instances left after an interrupted down: %+v", insts)
		}
	})
}

// sleeperSource never listens: up waits for it until its timeout.
const sleeperSource = `package main

import "time"

func main() { time.Sleep(time.Hour) }
`

// stubbornSource serves and ignores SIGTERM.
const stubbornSource = `package main

import (
	"fmt"
	"net/http"
	"os/signal"
	"syscall"
)

func main() {
	signal.Ignore(syscall.SIGTERM)
	http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "stubborn") }))
}
`

// consoleSays reports whether an instance's console under stateDir has s.
func consoleSays(stateDir, s string) bool {
	logs, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*", "console.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

func waitPIDFile(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return 0
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const exitSource = `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Print("about to exit with status 3") // no newline: the init's marker must still be found
	os.Exit(3)
}
`

func TestAppExitStatusIsReported(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": `
app "quitter" {
  language = "go"
  ports    = [` + fmt.Sprint(freePort(t)) + `] # it exits before it listens
}
target "dev" {
  provider = "qemu"
  apps     = [app.quitter]
  qemu {
    accel = "tcg"
  }
}
`,
		"go.mod":  goMod,
		"main.go": exitSource,
	})
	r := p.run("up", "--attach")
	if r.code != 3 {
		t.Fatalf("up --attach: exit %d, want the app's 3\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "about to exit with status 3") {
		t.Errorf("attached console lacks the app's output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "exited with status 3") {
		t.Errorf("up --attach did not report the status:\n%s", r.stderr)
	}
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "exited" || insts[0].ExitStatus == nil || *insts[0].ExitStatus != 3 {
		t.Fatalf("ps after exit 3: %+v", insts)
	}
	if ps := p.ok("ps").stdout; !strings.Contains(ps, "exited (3)") {
		t.Errorf("ps table lacks 'exited (3)':\n%s", ps)
	}
	// Detached, the same is an error that says what happened.
	r = p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, "exited with status 3 before it was ready") ||
		!strings.Contains(r.stderr, "about to exit with status 3") {
		t.Fatalf("up: exit %d, want 1 with the status and the console:\n%s", r.code, r.stderr)
	}
	if insts := p.ps(); len(insts) != 1 {
		t.Errorf("failed attempts must not pile up in ps: %+v", insts)
	}
}

func TestMalformedUnikfileExitsOneWithPosition(t *testing.T) {
	p := newProject(t, map[string]string{
		"Unikfile": "app \"a\" {\n  language = \"go\"\n  colour = \"red\"\n}\n",
	})
	r := p.run("validate")
	if r.code != 1 {
		t.Fatalf("validate: exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"Unsupported argument", "Unikfile:3:3", `colour = "red"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("diagnostic lacks %q:\n%s", want, r.stderr)
		}
	}
	r = p.run("validate", "--json")
	if r.code != 1 || !strings.Contains(r.stdout, `"line": 3`) {
		t.Errorf("validate --json: exit %d\n%s", r.code, r.stdout)
	}
	// up on a broken Unikfile builds nothing and changes nothing.
	p.cacheDir = t.TempDir()
	if r := p.run("up"); r.code != 1 || strings.Contains(r.stderr, "started") {
		t.Errorf("up on a broken Unikfile: exit %d\n%s", r.code, r.stderr)
	}
	if objs, _ := os.ReadDir(filepath.Join(p.cacheDir, "objects")); len(objs) != 0 {
		t.Errorf("up on a broken Unikfile wrote to the cache: %v", objs)
	}
}

func TestMissingKernel(t *testing.T) {
	p := newProject(t, map[string]string{
		"Unikfile": "app \"a\" {\n  language = \"go\"\n}\n",
		"go.mod":   goMod,
		"main.go":  exitSource,
	})
	p.cacheDir = t.TempDir() // no kernels in it
	p.env = []string{"UNIKFILE_KERNEL="}
	r := p.run("build")
	if r.code != 1 {
		t.Fatalf("build without a kernel: exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"no Linux kernel found", "unikfile kernel fetch", "UNIKFILE_KERNEL"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("missing-kernel error lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestMissingQEMU(t *testing.T) {
	needBoot(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(freePort(t), ""),
		"go.mod":   goMod,
		"main.go":  helloSource("x"),
	})
	// A PATH with Go but without QEMU.
	bin := t.TempDir()
	goBin, err := lookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(goBin, filepath.Join(bin, "go"))
	p.env = []string{"PATH=" + bin}
	r := p.run("up")
	if r.code != 1 {
		t.Fatalf("up without QEMU: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "qemu-system-x86_64 not found") || !strings.Contains(r.stderr, "apt-get install qemu-system-x86") {
		t.Errorf("missing-QEMU error:\n%s", r.stderr)
	}
}

func TestKillDuringBuildThenBuild(t *testing.T) {
	needBoot(t)
	// A source large enough that go build takes a moment.
	var big strings.Builder
	// A nonce keeps Go's own build cache from answering for the compiler.
	fmt.Fprintf(&big, "package main\n\nimport \"fmt\"\n\nconst nonce = %d\n\n", time.Now().UnixNano())
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&big, "func f%d(x int) int { return x*%d + len(fmt.Sprint(x)) }\n", i, i)
	}
	big.WriteString("func main() { fmt.Println(f1(1)) }\n")
	p := newProject(t, map[string]string{
		"Unikfile": "app \"big\" {\n  language = \"go\"\n}\n",
		"go.mod":   goMod,
		"main.go":  big.String(),
	})
	p.cacheDir = t.TempDir()
	// Kill -9 at several moments of the build; every later build must succeed
	// and produce the same image as an undisturbed one.
	for _, after := range []time.Duration{0, 200 * time.Millisecond, 500 * time.Millisecond} {
		build := p.start("build")
		build.waitLine("compile big: started")
		time.Sleep(after)
		build.signal(syscall.SIGKILL, true) // the whole group: unikfile and go
		if ws, ok := build.wait().Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("the build finished before the kill %s after the compile started; make the test source bigger", after)
		}
	}
	r := p.ok("build", "--json")
	digest := jsonField(r.stdout, "digest")
	clean := newProject(t, map[string]string{"Unikfile": "app \"big\" {\n  language = \"go\"\n}\n", "go.mod": goMod, "main.go": big.String()})
	clean.cacheDir = t.TempDir()
	want := jsonField(clean.ok("build", "--json").stdout, "digest")
	if digest == "" || digest != want {
		t.Fatalf("build after kills gave image %q, an undisturbed build %q", digest, want)
	}
	if tmp, _ := os.ReadDir(filepath.Join(p.cacheDir, "tmp")); len(tmp) != 0 {
		t.Errorf("temporary build folders left behind: %d (%v)", len(tmp), tmp)
	}
}

func TestConcurrentUpLeavesOneInstance(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("only one"),
	})
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.run("up")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("up #%d: exit %d\n%s\n%s", i, r.code, r.stdout, r.stderr)
		}
	}
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "running" {
		t.Fatalf("two concurrent up: want one running instance, got %+v", insts)
	}
	if n := len(qemuPIDs(p.stateDir)); n != 1 {
		t.Fatalf("%d QEMU processes, want 1", n)
	}
	if got := get(t, port); !strings.Contains(got, "only one") {
		t.Fatalf("GET = %q", got)
	}
}

func TestInitScaffoldsAValidUnikfile(t *testing.T) {
	p := newProject(t, map[string]string{"go.mod": "module example.com/svc\n\ngo 1.22\n", "main.go": helloSource("svc")})
	p.ok("init")
	if r := p.run("init"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second init: exit %d\n%s", r.code, r.stderr)
	}
	p.ok("validate")
	p.ok("fmt", "-check")
}

func jsonField(s, field string) string {
	key := `"` + field + `": "`
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	rest := s[i+len(key):]
	return rest[:strings.Index(rest, `"`)]
}

func TestExampleUnikfilesAreValid(t *testing.T) {
	p := newProject(t, nil)
	for _, f := range []string{"../Unikfile.example", "../examples/hello/Unikfile"} {
		abs, _ := filepath.Abs(f)
		p.ok("validate", "--file", abs)
		p.ok("fmt", "-check", abs)
	}
}

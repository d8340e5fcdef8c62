package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
)

// includeosSDK is the fixture's IncludeOS SDK (unpacked once per machine);
// a user points UNIKFILE_INCLUDEOS_SDK or includeos { sdk } at theirs.
func includeosSDK(t *testing.T) string {
	t.Helper()
	sdk := filepath.Join(testenv.FixtureArchive(t, "includeos", "includeos-x86_64-sdk.tar.zst"), "includeos-x86_64")
	if _, err := lookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 missing: run scripts/install-deps")
	}
	for _, p := range []string{"clang++-19", "nasm", "cmake", "ninja"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s missing (the SDK builds with it): run scripts/install-deps --test", p)
		}
	}
	return sdk
}

// fixtureServiceFiles are the files of one of the fixture recipe's service
// sources (hello, httpd), by path relative to dir.
func fixtureServiceFiles(t *testing.T, name, dir string) map[string]string {
	t.Helper()
	root := filepath.Join(testenv.FixtureArchive(t, "includeos", "includeos-recipe.tar.zst"), "recipe", "services", name)
	files := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.Join(dir, rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The fixture's HTTP service source on includeos, with the SDK from the
// app's block: up builds and boots it and it answers; a second up touches
// nothing; an edit of the service replaces its instance with one that
// answers the new text; logs show IncludeOS's console; down stops QEMU.
func TestIncludeOSUp(t *testing.T) {
	sdk := includeosSDK(t)
	port := freePort(t)
	files := fixtureServiceFiles(t, "httpd", "httpd")
	files["Unikfile"] = fmt.Sprintf(`app "httpd" {
  source   = "./httpd"
  language = "cpp"
  base     = "includeos"
  ports    = [80]
  includeos {
    sdk = %q
  }
}
target "dev" {
  provider = "qemu"
  apps     = [app.httpd]
  qemu {
    host_ports = { 80 = %d }
  }
}
`, sdk, port)
	p := newProject(t, files)
	p.cacheDir = t.TempDir() // this test checks what is rebuilt
	p.ok("up", "--timeout", "5m")
	if got := get(t, port); got != "Hello from IncludeOS\n" {
		t.Errorf("GET / = %q", got)
	}
	before := p.ps()
	if len(before) != 1 || before[0].State != "running" {
		t.Fatalf("ps after up: %+v", before)
	}
	logs := p.ok("logs", "httpd").stdout
	for _, w := range []string{"#include<os> // Literally", " +--> Running [ Tiny HTTP server ]", "httpd: request #1 /"} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %q:\n%s", w, logs)
		}
	}

	r := p.ok("up")
	if after := p.ps(); ids(after) != ids(before) || pids(after) != pids(before) {
		t.Errorf("a no-change up replaced the instance: %s then %s\n%s", ids(before), ids(after), r.stderr)
	}
	if !strings.Contains(r.stdout, "Nothing changed") {
		t.Errorf("no-change up did not say so:\n%s", r.stdout)
	}
	for _, node := range []string{"compile httpd", "package httpd", "deploy dev"} {
		if !hasLine(r.stderr, node, "up to date") {
			t.Errorf("no-change up: %q not reported up to date:\n%s", node, r.stderr)
		}
	}

	src := files["httpd/src/httpd.cpp"]
	p.write("httpd/src/httpd.cpp", strings.Replace(src, `"Hello from IncludeOS\n"`, `"Hello from an edited IncludeOS\n"`, 1))
	r = p.ok("up", "--timeout", "5m")
	after := p.ps()
	if len(after) != 1 || after[0].ID == before[0].ID || after[0].State != "running" {
		t.Fatalf("after an edit: %+v (before %s)\n%s", after, before[0].ID, r.stderr)
	}
	if got := get(t, port); got != "Hello from an edited IncludeOS\n" {
		t.Errorf("after the edit: GET / = %q", got)
	}
	p.ok("down")
	if insts := p.ps(); len(insts) != 0 || len(qemuPIDs(p.stateDir)) != 0 {
		t.Errorf("after down: %+v, QEMU %v", insts, qemuPIDs(p.stateDir))
	}
}

// Services that end, with the SDK from UNIKFILE_INCLUDEOS_SDK: the
// fixture's hello powers off after printing, which up --attach reports as
// its exit (status 0) and ps as exited (0); the countdown example's C
// program exits with status 3, which up --attach exits with.
func TestIncludeOSExitStatus(t *testing.T) {
	sdk := includeosSDK(t)
	files := fixtureServiceFiles(t, "hello", "hello")
	for name, content := range exampleFiles(t, "includeos") {
		if strings.HasPrefix(name, "countdown/") {
			files[name] = content
		}
	}
	files["Unikfile"] = `app "hello" {
  source   = "./hello"
  language = "cpp"
  base     = "includeos"
}
app "countdown" {
  source   = "./countdown"
  language = "c"
  base     = "includeos"
  memory   = "64MiB"
}
target "hello" {
  provider = "qemu"
  apps     = [app.hello]
}
target "countdown" {
  provider = "qemu"
  apps     = [app.countdown]
}
`
	p := newProject(t, files)
	p.env = append(p.env, "UNIKFILE_INCLUDEOS_SDK="+sdk)
	r := p.run("up", "--attach", "--timeout", "5m", "hello")
	if r.code != 0 || !strings.Contains(r.stdout, "Hello from an IncludeOS unikernel") || !strings.Contains(r.stdout, "[ Kernel ] Powering off") {
		t.Fatalf("up --attach hello: exit %d, want 0 with the service's output\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "exited" || insts[0].ExitStatus == nil || *insts[0].ExitStatus != 0 {
		t.Fatalf("ps after hello powered off: %+v", insts)
	}
	r = p.run("up", "--attach", "--timeout", "5m", "countdown")
	if r.code != 3 || !strings.Contains(r.stdout, "countdown: done, exiting with status 3") {
		t.Fatalf("up --attach countdown: exit %d, want 3\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, i := range p.ps() {
		if i.App == "countdown" && (i.State != "exited" || i.ExitStatus == nil || *i.ExitStatus != 3) {
			t.Errorf("ps: countdown %+v", i)
		}
	}
}

// examples/includeos through up: the C++ service (DHCP on QEMU's user
// network) answers from direct boot and from a GRUB-booted qcow2 disk,
// as soon as up returns (it waits for the guest's own acceptance).
func TestIncludeOSExamplesUp(t *testing.T) {
	sdk := includeosSDK(t)
	p := newProject(t, exampleFiles(t, "includeos"))
	p.env = append(p.env, "UNIKFILE_INCLUDEOS_SDK="+sdk)
	port := freePorts(t, 2)
	p.ok("up", "--var", "port="+strconv.Itoa(port), "--timeout", "5m", "dev", "disk")
	for _, pt := range []int{port, port + 1} {
		if got := get(t, pt); got != "hello from C++ on IncludeOS\n" {
			t.Errorf("GET :%d = %q", pt, got)
		}
	}
	if r := p.run("validate"); r.code != 0 {
		t.Errorf("validate: %s", r.stderr)
	}
}

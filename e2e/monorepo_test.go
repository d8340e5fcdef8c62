package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// monorepo writes a generated tree: services/sNN/Unikfile for n services,
// each with two tiny Go apps a and b (their own modules) and a target dev
// running both; a root Unikfile whose target prod runs app a of the first
// ten services; and groups/canary/Unikfile whose target canary runs
// services/s00:a00 and services/s05:b05. So s00:a00 is used by three targets in
// three Unikfiles, and every app a of s00-s09 by two.
func monorepo(t *testing.T, n int) *project {
	files := map[string]string{}
	var prod []string
	for i := 0; i < n; i++ {
		dir := fmt.Sprintf("services/s%02d", i)
		for _, app := range []string{"a", "b"} {
			files[dir+"/"+app+"/go.mod"] = goMod
			files[dir+"/"+app+"/main.go"] = tinyMain(fmt.Sprintf("%s %s v1", dir, app))
		}
		// App names are unique across the tree: a target's apps need
		// distinct names, and prod runs several services' a.
		files[dir+"/Unikfile"] = fmt.Sprintf(`app "a%02d" {
  source   = "./a"
  language = "go"
}
app "b%02d" {
  source   = "./b"
  language = "go"
}
target "dev" {
  provider = "qemu"
  apps     = [app.a%02d, app.b%02d]
}
`, i, i, i, i)
		if i < 10 {
			prod = append(prod, fmt.Sprintf("%q", fmt.Sprintf("%s:a%02d", dir, i)))
		}
	}
	files["Unikfile"] = "target \"prod\" {\n  provider = \"qemu\"\n  apps     = [" + strings.Join(prod, ", ") + "]\n}\n"
	five := min(5, n-1)
	files["groups/canary/Unikfile"] = fmt.Sprintf(`target "canary" {
  provider = "qemu"
  apps     = ["../../services/s00:a00", "../../services/s%02d:b%02d"]
}
`, five, five)
	p := newProject(t, files)
	p.cacheDir = t.TempDir() // this test counts what is built
	return p
}

// tinyMain is a Go program that prints msg: the smallest thing to compile.
func tinyMain(msg string) string {
	return "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(" + fmt.Sprintf("%q", msg) + ") }\n"
}

// count is how many lines of out start with prefix and contain word.
func count(out, prefix, word string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, word) {
			n++
		}
	}
	return n
}

var summaryLine = regexp.MustCompile(`Summary: (\d+) node\(s\) in [^:]+: (\d+) built, (\d+) cached, (\d+) failed, (\d+) skipped`)

// summaryCounts reads the summary line: nodes, built, cached, failed, skipped.
func summaryCounts(t *testing.T, stderr string) [5]int {
	t.Helper()
	m := summaryLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary in:\n%s", stderr)
	}
	var out [5]int
	for i := range out {
		fmt.Sscan(m[i+1], &out[i])
	}
	return out
}

func TestMonorepoBuild(t *testing.T) {
	const services = 30 // 60 apps
	p := monorepo(t, services)
	all := []string{"build", "./...:dev", "./...:prod", "./...:canary", "-j", "2"}

	// Cold: every app once, however many targets use it.
	r := p.ok(all...)
	for _, app := range []string{"services/s00:a00", "services/s05:b05", "services/s09:a09", "services/s29:b29"} {
		if got := count(r.stderr, "compile "+app+":", "started"); got != 1 {
			t.Errorf("compile %s started %d times, want once:\n%s", app, got, r.stderr)
		}
		if got := count(r.stderr, "package "+app+" ", "done"); got != 1 {
			t.Errorf("package %s done %d times, want once", app, got)
		}
	}
	// 60 compiles, 60 packages, one guest init.
	if c := summaryCounts(t, r.stderr); c != [5]int{121, 121, 0, 0, 0} {
		t.Errorf("cold build summary (nodes, built, cached, failed, skipped) = %v, want [121 121 0 0 0]", c)
	}
	if got := strings.Count(r.stdout, ": image "); got != 2*services {
		t.Errorf("%d images printed, want %d:\n%s", got, 2*services, r.stdout)
	}

	// No change: nothing rebuilt.
	r = p.ok(all...)
	if c := summaryCounts(t, r.stderr); c[1] != 0 || c[2] != 121 {
		t.Errorf("no-change build: %d built, %d cached, want 0 and 121:\n%s", c[1], c[2], r.stderr)
	}

	// One app changed: its compile and package only.
	p.write("services/s03/b/main.go", tinyMain("services/s03 b v2"))
	r = p.ok(all...)
	if c := summaryCounts(t, r.stderr); c[1] != 2 || c[2] != 119 {
		t.Errorf("one app changed: %d built, %d cached, want 2 and 119:\n%s", c[1], c[2], r.stderr)
	}
	for _, node := range []string{"compile services/s03:b03", "package services/s03:b03 "} {
		if count(r.stderr, node, "done") != 1 {
			t.Errorf("%s not rebuilt:\n%s", node, r.stderr)
		}
	}
	// The last identical build's stamp named the edited file, so its
	// compile started first, not after the checks of the apps before it.
	if first, _, _ := strings.Cut(r.stderr, "\n"); first != "compile services/s03:b03: started" {
		t.Errorf("first line %q, want the edited app's compile to start first:\n%s", first, r.stderr)
	}

	// The graph shows the same: everything cached, then one app to build.
	g := p.ok("graph", "./...:prod")
	if !strings.Contains(g.stdout, "21 node(s): 21 cached, 0 to build") || !strings.Contains(g.stdout, "├── compile services/s09:a09  [cached]") {
		t.Errorf("graph ./...:prod:\n%s", g.stdout)
	}
	g = p.ok("graph", "./...:canary", "--up")
	for _, want := range []string{"6 node(s): 5 cached, 0 to build, 1 deploy", "deploy groups/canary:canary  [deploy]\n├── package services/s00:a00 (linux, kernel+initrd)  [cached]\n│   ├── compile services/s00:a00  [cached]"} {
		if !strings.Contains(g.stdout, want) {
			t.Errorf("graph --up lacks %q:\n%s", want, g.stdout)
		}
	}
	p.write("services/s00/a/main.go", tinyMain("services/s00 a v2"))
	g = p.ok("graph", "./...:canary", "--dot")
	for _, want := range []string{"digraph unikfile {", `"compile services/s00:a00" [label="compile services/s00:a00\nbuild"`,
		`"compile services/s05:b05" [label="compile services/s05:b05\ncached"`, `"compile services/s00:a00" -> "package services/s00:a00 (linux, kernel+initrd)";`} {
		if !strings.Contains(g.stdout, want) {
			t.Errorf("graph --dot lacks %s:\n%s", want, g.stdout)
		}
	}

	// A broken app with --keep-going: every other app is still built, and
	// the exit status says it failed.
	p.write("services/s07/a/main.go", "package main\n\nfunc main() { undefined() }\n")
	r = p.run(append(all, "--keep-going")...)
	if r.code != 1 {
		t.Fatalf("keep-going build with a broken app: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "undefined: undefined") || !strings.Contains(r.stderr, "services/s07/a") {
		t.Errorf("the compiler's message is missing:\n%s", r.stderr)
	}
	// s00:a changed above: 2 built; s07:a failed, its package skipped.
	if c := summaryCounts(t, r.stderr); c != [5]int{121, 2, 117, 1, 1} {
		t.Errorf("keep-going summary = %v, want [121 2 117 1 1]:\n%s", c, r.stderr)
	}
	if got := strings.Count(r.stdout, ": image "); got != 2*services-1 {
		t.Errorf("%d images printed after a failure with --keep-going, want %d", got, 2*services-1)
	}
	if strings.Contains(r.stdout, "services/s07:a07: image") {
		t.Errorf("the broken app has an image:\n%s", r.stdout)
	}
	p.write("services/s07/a/main.go", tinyMain("services/s07 a v1"))

	// The summary as JSON.
	r = p.ok("build", "services/s07", "services/s08:b08", "--summary", "json")
	for _, want := range []string{`"id": "compile services/s07:a07"`, `"status": "cached"`, `"id": "package services/s08:b08 (linux, kernel+initrd)"`, `"failed": 0`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--summary json lacks %s:\n%s", want, r.stdout)
		}
	}
}

func TestMonorepoChangedSince(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git missing: run scripts/install-deps")
	}
	p := monorepo(t, 4)
	gitIn := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = p.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitIn("init", "-q")
	gitIn("add", "-A")
	gitIn("commit", "-qm", "start")

	r := p.ok("build", "./...", "--changed-since", "HEAD")
	if !strings.Contains(r.stdout, "Nothing to build: no selected app changed since HEAD") {
		t.Errorf("nothing changed, yet:\n%s\n%s", r.stdout, r.stderr)
	}
	// One source file edited, one Unikfile edited, one untracked file.
	p.write("services/s01/b/main.go", tinyMain("s01 b v2"))
	p.write("services/s02/Unikfile", strings.Replace(readFile(t, p, "services/s02/Unikfile"), `target "dev"`, `target "dev2"`, 1))
	p.write("services/s03/a/notes.txt", "new file")
	r = p.ok("build", "./...", "--changed-since", "HEAD")
	var built []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if name, _, ok := strings.Cut(l, ": image "); ok {
			built = append(built, name)
		}
	}
	want := "services/s01:b01 services/s02:a02 services/s02:b02 services/s03:a03"
	if strings.Join(built, " ") != want {
		t.Errorf("--changed-since built %v, want %s\n%s", built, want, r.stderr)
	}

	// Without git: what to install.
	p.env = []string{"PATH=" + t.TempDir()}
	r = p.run("build", "./...", "--changed-since", "HEAD")
	if r.code != 1 || !strings.Contains(r.stderr, "git not found in PATH; --changed-since asks git what changed: install git (apt-get install git)") {
		t.Errorf("without git: exit %d\n%s", r.code, r.stderr)
	}
	p.env = nil
	// A revision git does not know: git's own message.
	r = p.run("build", "./...", "--changed-since", "no-such-rev")
	if r.code != 1 || !strings.Contains(r.stderr, "no-such-rev") {
		t.Errorf("unknown revision: exit %d\n%s", r.code, r.stderr)
	}
}

func TestMonorepoReferenceToAMissingApp(t *testing.T) {
	p := newProject(t, map[string]string{
		"services/api/Unikfile": "app \"api\" {\n  source   = \".\"\n  language = \"go\"\n}\n",
		"services/api/go.mod":   goMod,
		"services/api/main.go":  tinyMain("api"),
		"Unikfile":              "target \"prod\" {\n  provider = \"qemu\"\n  apps     = [\"services/api:apii\"]\n}\n",
	})
	for _, args := range [][]string{{"validate"}, {"build", "./..."}, {"up", "prod"}} {
		r := p.run(args...)
		if r.code != 1 {
			t.Errorf("%v: exit %d, want 1", args, r.code)
		}
		for _, want := range []string{
			"Error: Reference to undeclared app",
			"on Unikfile:3:15, in target \"prod\"", // the reference
			"services/api/Unikfile:1:1",            // where the apps are declared
			`declares no app named "apii"; declared apps: api. Did you mean "api"?`,
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, r.stderr)
			}
		}
	}
	// Every file's problems at once.
	p.write("services/api/Unikfile", "app \"api\" {\n  language = \"go\"\n  colour = 1\n}\n")
	p.write("services/web/Unikfile", "app \"web\" {\n  language = \"rust\"\n  ports = [0]\n}\n")
	r := p.run("validate", "./...")
	for _, want := range []string{"on services/api/Unikfile:3:3", "on services/web/Unikfile:3:12"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("validate ./... lacks %q:\n%s", want, r.stderr)
		}
	}
}

func readFile(t *testing.T, p *project, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The no-op fast path: an identical build whose inputs kept their
// metadata replays the last result; any change to what it relied on makes
// a real build.
func TestMonorepoNoOpFastPath(t *testing.T) {
	p := monorepo(t, 3)
	const replayed = "Nothing changed since the last identical build"
	var last result // the last build's
	build := func() result {
		t.Helper()
		last = p.ok("build", "./...")
		return last
	}
	settle := func() { time.Sleep(2100 * time.Millisecond) } // the racy window
	first := build()
	settle()
	if r := build(); strings.Contains(r.stderr, replayed) {
		t.Fatalf("replayed right after writing the cache:\n%s", r.stderr)
	}
	settle()
	r := build()
	if !strings.Contains(r.stderr, replayed) || r.stdout != first.stdout {
		t.Fatalf("an identical build was not replayed, or printed something else:\n%s\n%s", r.stdout, r.stderr)
	}
	if c := summaryCounts(t, r.stderr); c != [5]int{13, 0, 13, 0, 0} {
		t.Errorf("replayed summary %v", c)
	}

	for _, c := range []struct {
		name   string
		change func()
		args   []string // besides build ./...
		env    []string
		built  int // nodes built by the real build that follows; -1: it fails, -2: any
	}{
		{name: "a new Unikfile below", change: func() {
			p.write("services/new/Unikfile", "app \"n\" {\n  source = \"./n\"\n  language = \"go\"\n}\n")
			p.write("services/new/n/go.mod", goMod)
			p.write("services/new/n/main.go", tinyMain("new"))
		}, built: 2},
		{name: "a source edited", change: func() { p.write("services/s01/a/main.go", tinyMain("edited")) }, built: 2},
		{name: "a file added to a source", change: func() { p.write("services/s02/b/extra.txt", "x") }, built: 2},
		{name: "a Unikfile edited", change: func() {
			p.write("services/s00/Unikfile", strings.Replace(readFile(t, p, "services/s00/Unikfile"), `target "dev"`, `target "dev2"`, 1))
		}, built: 0},
		{name: "the --var given", args: []string{"--var", "x=1"}, built: -1},
		{name: "another flag", args: []string{"-j", "1"}, built: 0},
		{name: "the environment Go reads", env: []string{"GOFLAGS=-mod=mod"}, built: -2},
		{name: "an image missing from the cache", change: func() {
			imageDir := "" // one image's folder in the cache
			for _, l := range strings.Split(last.stdout, "\n") {
				if strings.HasPrefix(l, "  /") {
					imageDir = strings.TrimSpace(l)
				}
			}
			if err := os.Remove(filepath.Join(imageDir, "initrd")); err != nil {
				t.Fatal(err)
			}
		}, built: 1},
		{name: "unikfile's executable replaced", change: func() {
			now := time.Now()
			if err := os.Chtimes(binary, now, now); err != nil {
				t.Fatal(err)
			}
		}, built: 0},
	} {
		if c.change != nil {
			c.change()
		}
		p.env = c.env
		r := p.run(append([]string{"build", "./..."}, c.args...)...)
		p.env = nil
		if strings.Contains(r.stderr, replayed) {
			t.Errorf("%s: replayed:\n%s", c.name, r.stderr)
			continue
		}
		switch {
		case c.built == -1:
			if !strings.Contains(r.stderr, `Unikfiles declares a variable named "x"`) {
				t.Errorf("%s: %s", c.name, r.stderr)
			}
		case r.code != 0:
			t.Fatalf("%s: exit %d\n%s", c.name, r.code, r.stderr)
		case c.built >= 0:
			if got := summaryCounts(t, r.stderr)[1]; got != c.built {
				t.Errorf("%s: %d nodes built, want %d\n%s", c.name, got, c.built, r.stderr)
			}
		}
		settle()
		build() // records the stamp anew
		settle()
	}

	// A replay ends the process before the heavy packages of the binary
	// initialise (cmd/unikfile/internal/noop): Go's init trace of it
	// (which lists a package once its init returned, so not the no-op
	// package itself) holds none of them.
	// (GODEBUG is part of the guest init's key: the first build makes
	// new images, the second records a stamp outside their racy window.)
	p.env = []string{"GODEBUG=inittrace=1"}
	build()
	settle()
	build()
	settle()
	r = build()
	p.env = nil
	if !strings.Contains(r.stderr, replayed) {
		t.Fatalf("not replayed with GODEBUG set:\n%s", r.stderr)
	}
	var inits []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "init" && strings.HasPrefix(f[2], "@") {
			inits = append(inits, f[1])
		}
	}
	if len(inits) == 0 {
		t.Fatalf("no init trace:\n%s", r.stderr)
	}
	for _, heavy := range []string{"regexp/syntax", "google.golang.org/protobuf/reflect/protoregistry", "google.golang.org/grpc",
		"github.com/vmware/govmomi/vim25/types", "github.com/aws/aws-sdk-go-v2/service/ec2", "github.com/spf13/cobra", "github.com/hashicorp/hcl/v2/hclsyntax"} {
		if slices.Contains(inits, heavy) {
			t.Errorf("%s initialised before the replay", heavy)
		}
	}
}

// A target in the root Unikfile boots an app declared next to its code in
// another Unikfile; ps and down work from the root and by address.
func TestUpAppOfAnotherUnikfile(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"services/api/Unikfile": "app \"api\" {\n  language = \"go\"\n  ports    = [8080]\n}\n",
		"services/api/go.mod":   goMod,
		"services/api/main.go":  helloSource("api from its own Unikfile"),
		"Unikfile": fmt.Sprintf(`target "prod" {
  provider = "qemu"
  apps     = ["services/api:api"]
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d }
  }
}
`, port),
	})
	r := p.ok("up", "prod")
	if !strings.Contains(r.stdout, "prod/api: started") {
		t.Errorf("up prod:\n%s", r.stdout)
	}
	if got := get(t, port); !strings.Contains(got, "api from its own Unikfile") {
		t.Fatalf("GET = %q", got)
	}
	// Two Unikfiles were loaded: node names carry their directories.
	if !strings.Contains(r.stderr, "compile services/api:api: done") || !strings.Contains(r.stderr, "deploy .:prod: done") {
		t.Errorf("node names:\n%s", r.stderr)
	}
	if ps := p.ps(); len(ps) != 1 || ps[0].App != "api" || ps[0].Target != "prod" || ps[0].State != "running" {
		t.Fatalf("ps: %+v", ps)
	}
	if out := p.ok("ps", ".:prod").stdout; !strings.Contains(out, "api") {
		t.Errorf("ps .:prod:\n%s", out)
	}
	r = p.ok("up", "./...:prod")
	if !strings.Contains(r.stdout, "Nothing changed") {
		t.Errorf("second up:\n%s", r.stdout)
	}
	r = p.ok("down", "./...:prod")
	if !strings.Contains(r.stdout, "prod/api: removed") {
		t.Errorf("down ./...:prod:\n%s", r.stdout)
	}
	if ps := p.ps(); len(ps) != 0 {
		t.Errorf("instances left after down: %+v", ps)
	}
}

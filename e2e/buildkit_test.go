package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

// startBuildKit starts a registry and a buildkitd for one test, pushes the
// offline Go builder image, and returns buildkitd's address and the image.
func startBuildKit(t *testing.T) (addr, builder string) {
	t.Helper()
	if why := testenv.Missing(); why != "" {
		t.Skip(why)
	}
	reg, err := testenv.StartRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	bk, err := testenv.StartBuildKit(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Stop)
	builder = reg.Addr + "/unikfile/go:" + testenv.GoVersion()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := testenv.PushGoBuilder(ctx, bk.Addr, builder); err != nil {
		t.Fatal(err)
	}
	return bk.Addr, builder
}

// helloProject is examples/hello with its app compiled in builder.
func helloProject(t *testing.T, builder string) *project {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{"Unikfile", "go.mod", "main.go"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "hello", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	if builder != "" {
		uf := strings.Replace(files["Unikfile"], `language = "go"`, `language = "go"`+"\n  builder  = "+strconv.Quote(builder), 1)
		if uf == files["Unikfile"] {
			t.Fatal("examples/hello/Unikfile has no language = \"go\" line to add the builder after")
		}
		files["Unikfile"] = uf
	}
	return newProject(t, files)
}

type builtImage struct {
	App    string `json:"app"`
	Digest string `json:"digest"`
}

func imageDigest(t *testing.T, r result) string {
	t.Helper()
	var imgs []builtImage
	if err := json.Unmarshal([]byte(r.stdout), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("build --json: %v\n%s", err, r.stdout)
	}
	return imgs[0].Digest
}

// examples/hello compiled by BuildKit (UNIKFILE_BUILDKIT_HOST selects it)
// gives the same image, byte for byte, as the local executor, and boots and
// answers.
func TestBuildKitExecutorHelloBootsAndMatchesLocal(t *testing.T) {
	needBoot(t)
	addr, builder := startBuildKit(t)
	p := helloProject(t, builder)

	p.cacheDir = t.TempDir()
	local := imageDigest(t, p.ok("build", "--json", "--executor", "local"))

	p.cacheDir = t.TempDir()
	p.env = append(p.env, "UNIKFILE_BUILDKIT_HOST="+addr)
	port := freePort(t)
	// A fresh buildkitd compiles Go's standard library: minutes on a loaded machine.
	r := p.runFor(20*time.Minute, "up", "--var", "port="+strconv.Itoa(port))
	for _, want := range []string{"executor buildkit: compiling with buildkitd at " + addr, "[hello] go build"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("up's progress does not show %q:\n%s", want, r.stderr)
		}
	}
	if got := get(t, port); !strings.Contains(got, "Hello from a unikernel!") {
		t.Fatalf("GET = %q", got)
	}
	insts := p.ps()
	if len(insts) != 1 {
		t.Fatalf("ps: %+v", insts)
	}
	if insts[0].ImageDigest != local {
		t.Errorf("the image BuildKit's bundle went into is %s; the local executor's is %s", insts[0].ImageDigest, local)
	}

	// A language BuildKit has no recipe for (elf: a program the user
	// brings): chosen by the environment variable (or auto), the app
	// compiles locally and the output says so; asked for by name, it is an
	// error that says what to do.
	c := newProject(t, exampleFiles(t, "elf"))
	if out, err := exec.Command("gcc", "-O2", "-o", filepath.Join(c.dir, "server"), filepath.Join("..", "examples", "c", "server.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	c.env = append(c.env, "UNIKFILE_BUILDKIT_HOST="+addr)
	r = c.ok("build")
	if !strings.Contains(r.stderr, "BuildKit has no builder for language elf on base linux yet; compiling app hello-elf with the local toolchain") {
		t.Errorf("an elf app under UNIKFILE_BUILDKIT_HOST: progress does not say it compiled locally:\n%s", r.stderr)
	}
	if r := c.run("build", "--executor", "buildkit"); r.code != 1 || !strings.Contains(r.stderr, "--executor local") {
		t.Errorf("an elf app with --executor buildkit: exit %d, want 1 and what to do:\n%s", r.code, r.stderr)
	}
}

// An unreachable buildkitd fails fast with what to do; auto falls back to
// the local executor and says so.
func TestBuildKitUnreachableAndAutoFallback(t *testing.T) {
	p := helloProject(t, "")
	host := "unix://" + filepath.Join(t.TempDir(), "no-buildkitd.sock")
	p.env = append(p.env, "UNIKFILE_BUILDKIT_HOST="+host)

	r := p.run("build", "--executor", "buildkit")
	if r.code != 1 {
		t.Fatalf("build with no buildkitd: exit %d; want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"no buildkitd answers at " + host, "--executor local"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error does not say %q:\n%s", want, r.stderr)
		}
	}
	// Fast: it names the missing socket rather than waiting out a timeout.
	if !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("error does not give the cause (the socket is missing):\n%s", r.stderr)
	}

	r = p.ok("build", "--executor", "auto")
	if !strings.Contains(r.stderr, "executor auto: no buildkitd answers at "+host) || !strings.Contains(r.stderr, "compiling with the local toolchain") {
		t.Errorf("auto did not say it fell back to the local executor:\n%s", r.stderr)
	}

	r = p.run("build", "--executor", "docker")
	if r.code != 1 || !strings.Contains(r.stderr, "use local, buildkit or auto") {
		t.Errorf("--executor docker: exit %d\n%s", r.code, r.stderr)
	}
}

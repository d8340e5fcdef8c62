package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

// buildkitd returns the address of a buildkitd of its own for the test.
func buildkitd(t *testing.T) string {
	t.Helper()
	bk, err := testenv.StartBuildKit(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Stop)
	return bk.Addr
}

// offlineBuilders starts a registry serving the offline builder images
// (made once per machine through buildkitd at addr).
func offlineBuilders(t *testing.T, addr string) *testenv.Builders {
	t.Helper()
	if why := testenv.MissingBuilders(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	b, err := testenv.StartBuilders(ctx, addr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// withBuilder adds builder = IMAGE to the app of an example's Unikfile.
func withBuilder(t *testing.T, files map[string]string, image string) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(\s*language\s*=\s*"[a-z]+")$`)
	uf := re.ReplaceAllString(files["Unikfile"], "$1\n  builder  = "+strconv.Quote(image))
	if uf == files["Unikfile"] {
		t.Fatal("the example's Unikfile has no language line to add the builder after")
	}
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	out["Unikfile"] = uf
	return out
}

// runFor runs unikfile with a longer limit than run's: a first compile in
// a builder image pulls it.
func (p *project) runFor(limit time.Duration, args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := p.command(ctx, args...)
	var stdout, stderr testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	} else if err != nil {
		p.t.Fatalf("unikfile %s: %v", strings.Join(args, " "), err)
	}
	if r.code != 0 {
		p.t.Fatalf("unikfile %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// Every language's example compiled by BuildKit in an offline builder
// image boots and answers; a second build in a fresh cache on a second,
// fresh buildkitd, chosen by auto, gives the same image; a static C program's image is the
// local executor's when the builder's toolchain is the host's.
func TestBuildKitLanguagesBoot(t *testing.T) {
	needBoot(t)
	if why := testenv.Missing(); why != "" {
		t.Skip(why)
	}
	first, second := buildkitd(t), buildkitd(t)
	b := offlineBuilders(t, first)
	for _, c := range []struct{ example, language, want string }{
		{"c", "c", "hello from C"},
		{"cpp", "cpp", "hello from C++"},
		{"rust", "rust", "hello from Rust"},
		{"python", "python", "hello from Python"},
		{"node", "node", "hello from Node.js"},
		{"java", "java", "hello from Java"},
	} {
		t.Run(c.example, func(t *testing.T) {
			p := newProject(t, withBuilder(t, exampleFiles(t, c.example), b.For(c.language).Ref))
			p.cacheDir = t.TempDir()
			p.env = append(p.env, "UNIKFILE_BUILDKIT_HOST="+first)
			r := p.runFor(20*time.Minute, "build", "--json", "--executor", "buildkit")
			digest := imageDigest(t, r)
			if !strings.Contains(r.stderr, "compiling with buildkitd at "+first) || !strings.Contains(r.stderr, "build") {
				t.Errorf("build's progress does not show BuildKit compiling:\n%s", r.stderr)
			}
			port := freePort(t)
			p.runFor(15*time.Minute, "up", "--executor", "buildkit", "--var", "port="+strconv.Itoa(port), "--timeout", "10m")
			if got := slowGet(t, port); !strings.Contains(got, c.want) {
				t.Fatalf("GET = %q, want %q", got, c.want)
			}
			if insts := p.ps(); len(insts) != 1 || insts[0].ImageDigest != digest {
				t.Errorf("ps: %+v; want one instance of image %s", insts, digest)
			}
			p.ok("down")

			// A new machine: a fresh unikfile cache and a fresh buildkitd.
			q := newProject(t, withBuilder(t, exampleFiles(t, c.example), b.For(c.language).Ref))
			q.cacheDir = t.TempDir()
			q.env = append(q.env, "UNIKFILE_BUILDKIT_HOST="+second)
			// auto compiles every language on BuildKit when a buildkitd answers.
			r = q.runFor(20*time.Minute, "build", "--json", "--executor", "auto")
			if !strings.Contains(r.stderr, "buildkitd answers at "+second+"; compiling with BuildKit") || strings.Contains(r.stderr, "with the local toolchain") {
				t.Errorf("auto did not compile with BuildKit:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr, "found in BuildKit's cache") {
				t.Errorf("the second buildkitd was not fresh:\n%s", r.stderr)
			}
			if again := imageDigest(t, r); again != digest {
				t.Errorf("the same source gave image %s on one buildkitd and %s on another", digest, again)
			}

			if c.example == "c" {
				host := testenv.HostVersions(testenv.CToolchainPackages)
				img := b.For("c").VersionsOf(testenv.CToolchainPackages)
				if host != img {
					t.Logf("the builder's C toolchain is not the host's; the local image is not compared:\nhost:\n%sbuilder:\n%s", host, img)
					return
				}
				l := newProject(t, exampleFiles(t, c.example))
				l.cacheDir = t.TempDir()
				if local := imageDigest(t, l.ok("build", "--json", "--executor", "local")); local != digest {
					t.Errorf("with the same toolchain (%s), the local executor's image is %s and BuildKit's %s", strings.ReplaceAll(host, "\n", " "), local, digest)
				}
			}
		})
	}
}

// A monorepo with an app of every language (Go's cache across machines is
// stages/compile/buildkit's TestRemoteCacheAcrossMachines), compiled by one buildkitd
// that exports its cache to a registry (mode=max), is compiled again by a
// second buildkitd with an empty root and a new unikfile cache, importing
// that cache: no compiler runs (BuildKit reports every compile step
// cached) and the images are the same.
func TestBuildKitRegistryCacheAcrossMachines(t *testing.T) {
	if why := testenv.Missing(); why != "" {
		t.Skip(why)
	}
	reg, err := testenv.StartRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	ci, laptop := buildkitd(t), buildkitd(t)
	b := offlineBuilders(t, ci)
	ref := reg.Addr + "/team/buildcache:main"
	buildBlock := fmt.Sprintf("\nbuild {\n  executor   = \"buildkit\"\n  cache_from = [\"type=registry,ref=%s,registry.insecure=true\"]\n  cache_to   = [\"type=registry,ref=%s,mode=max,registry.insecure=true\"]\n}\n", ref, ref)
	files := map[string]string{}
	apps := map[string]string{} // folder -> app
	for _, ex := range []struct{ dir, language, app string }{
		{"c", "c", "hello-c"}, {"cpp", "cpp", "hello-cpp"}, {"rust", "rust", "hello-rust"},
		{"python", "python", "hello-python"}, {"node", "node", "hello-node"}, {"java", "java", "hello-java"},
	} {
		for name, content := range withBuilder(t, exampleFiles(t, ex.dir), b.For(ex.language).Ref) {
			if name == "Unikfile" {
				content += buildBlock
			}
			files[filepath.Join("services", ex.dir, name)] = content
		}
		apps[ex.dir] = ex.app
	}
	build := func(addr string) (result, map[string]string) {
		p := newProject(t, files)
		p.cacheDir = t.TempDir()
		p.env = append(p.env, "UNIKFILE_BUILDKIT_HOST="+addr)
		r := p.runFor(30*time.Minute, "build", "./...", "--json")
		digests := map[string]string{}
		var imgs []builtImage
		if err := json.Unmarshal([]byte(r.stdout), &imgs); err != nil {
			t.Fatalf("build --json: %v\n%s", err, r.stdout)
		}
		for _, img := range imgs {
			digests[img.App] = img.Digest
		}
		return r, digests
	}
	first, firstImages := build(ci)
	for dir, app := range apps {
		if cachedLine(first.stderr, app) {
			t.Errorf("%s (%s): the first build on an empty buildkitd found the compile in BuildKit's cache", app, dir)
		}
	}
	second, secondImages := build(laptop)
	for dir, app := range apps {
		if !cachedLine(second.stderr, app) {
			t.Errorf("%s (%s): the second machine ran the compiler instead of taking it from the registry cache", app, dir)
		}
		if firstImages[app] == "" || firstImages[app] != secondImages[app] {
			t.Errorf("%s: image %s on the first machine, %s on the second", app, firstImages[app], secondImages[app])
		}
	}
	if t.Failed() {
		t.Logf("second build's output:\n%s", second.stderr)
	}
	t.Logf("first machine %s, second machine (registry cache) %s: %.2fx", first.elapsed.Round(time.Second), second.elapsed.Round(time.Second), float64(second.elapsed)/float64(first.elapsed))
}

// cachedLine reports whether the build's output says app's compile came
// from BuildKit's cache.
func cachedLine(out, app string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ":"+app+":") || strings.Contains(l, " "+app+":") {
			if strings.Contains(l, "compile step found in BuildKit's cache") {
				return true
			}
		}
	}
	return false
}

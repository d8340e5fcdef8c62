package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

var buildkitOnly = flag.Bool("buildkit-only", false, "run only the BuildKit executor comparison")

var bkRuns = flag.Int("buildkit-runs", 1, "repetitions of the BuildKit builds that start from a wiped buildkitd (each pulls the builder image and compiles the standard library); 0 skips the BuildKit comparison")

// buildkitBench compares, on examples/hello, the local executor's cold
// build with the buildkit executor's builds: cold (a wiped buildkitd,
// exporting its cache to a registry), warm in unikfile's cache, warm in
// buildkitd's cache only, and warm from the registry cache only (a wiped
// buildkitd and an empty unikfile cache: a new machine).
func buildkitBench(e *env, root string) error {
	if *bkRuns == 0 {
		return nil
	}
	if why := testenv.Missing(); why != "" {
		fmt.Printf("BuildKit executor: skipped: %s\n\n", why)
		return nil
	}
	dir := filepath.Join(e.tmp, "buildkit")
	for _, d := range []string{"registry", "bk", "hello"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	reg, err := testenv.StartRegistry(filepath.Join(dir, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	bk, err := testenv.StartBuildKit(filepath.Join(dir, "bk"))
	if err != nil {
		return err
	}
	defer func() { bk.Stop() }()
	builder := reg.Addr + "/unikfile/go:" + testenv.GoVersion()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := testenv.PushGoBuilder(ctx, bk.Addr, builder); err != nil {
		return err
	}
	// examples/hello with the builder image and the registry cache.
	p := &env{tmp: e.tmp, bin: e.bin, project: filepath.Join(dir, "hello"), state: e.state, kernel: e.kernel, port: e.port}
	if err := copyDir(filepath.Join(root, "examples", "hello"), p.project); err != nil {
		return err
	}
	ref := reg.Addr + "/unikfile/cache:hello"
	uf, _ := os.ReadFile(filepath.Join(p.project, "Unikfile"))
	s := strings.Replace(string(uf), `language = "go"`, `language = "go"`+"\n  builder  = "+strconv.Quote(builder), 1)
	s += fmt.Sprintf("\nbuild {\n  buildkit_host = %q\n  cache_from = [\"type=registry,ref=%s,registry.insecure=true\"]\n  cache_to   = [\"type=registry,ref=%s,mode=max,registry.insecure=true\"]\n}\n", bk.Addr, ref, ref)
	if err := os.WriteFile(filepath.Join(p.project, "Unikfile"), []byte(s), 0o644); err != nil {
		return err
	}
	n := 0
	fresh := func() { n++; p.cache = filepath.Join(dir, "cache-"+strconv.Itoa(n)) }
	build := func(executor string) (time.Duration, error) {
		return timeIt(func() error { return p.unikfile("build", "--executor", executor) })
	}
	wipe := func() error {
		var err error
		bk, err = bk.Restart()
		return err
	}

	var local, cold, warmLocal, warmBK, remote []time.Duration
	for i := 0; i < *runs; i++ {
		fresh()
		d, err := build("local")
		if err != nil {
			return err
		}
		local = append(local, d)
	}
	for i := 0; i < *bkRuns; i++ {
		if err := wipe(); err != nil {
			return err
		}
		fresh()
		d, err := build("buildkit")
		if err != nil {
			return err
		}
		cold = append(cold, d)
	}
	for i := 0; i < *runs; i++ {
		d, err := build("buildkit") // unikfile's cache from the build before
		if err != nil {
			return err
		}
		warmLocal = append(warmLocal, d)
	}
	for i := 0; i < *runs; i++ {
		fresh()
		d, err := build("buildkit")
		if err != nil {
			return err
		}
		warmBK = append(warmBK, d)
	}
	for i := 0; i < *bkRuns; i++ {
		if err := wipe(); err != nil {
			return err
		}
		fresh()
		d, err := build("buildkit")
		if err != nil {
			return err
		}
		remote = append(remote, d)
	}
	base := median(local)
	fmt.Printf("BuildKit executor, examples/hello (unikfile build; buildkitd and a registry on this machine)\n")
	fmt.Printf("%-52s %10s\n", "local executor, cold (empty unikfile cache)", round(base))
	for _, r := range []struct {
		name string
		d    time.Duration
	}{
		{"buildkit, cold (wiped buildkitd; exports cache_to)", median(cold)},
		{"buildkit, warm unikfile cache", median(warmLocal)},
		{"buildkit, warm buildkitd cache only", median(warmBK)},
		{"buildkit, registry cache only (new machine)", median(remote)},
	} {
		fmt.Printf("%-52s %10s  %6.2fx local cold\n", r.name, round(r.d), float64(r.d)/float64(base))
	}
	fmt.Println()
	return buildkitLanguagesBench(e, root, reg, builder)
}

// buildkitLanguagesBench builds a tree of one app of every language (the
// examples, in the tests' offline builder images) on a buildkitd with an
// empty root that exports its cache to a registry (the CI machine), then
// on a second buildkitd with an empty root and a new unikfile cache that
// imports it (a laptop pointed at the team's cache), and prints the
// second's time as a fraction of the first's.
func buildkitLanguagesBench(e *env, root string, reg *testenv.Registry, goBuilder string) error {
	if why := testenv.MissingBuilders(); why != "" {
		fmt.Printf("BuildKit registry cache across machines: skipped: %s\n\n", why)
		return nil
	}
	dir := filepath.Join(e.tmp, "buildkit-languages")
	machine := func(name string) (*testenv.BuildKit, error) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		return testenv.StartBuildKit(d)
	}
	ci, err := machine("ci")
	if err != nil {
		return err
	}
	defer ci.Stop()
	laptop, err := machine("laptop")
	if err != nil {
		return err
	}
	defer laptop.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	if err := os.MkdirAll(filepath.Join(dir, "builders"), 0o755); err != nil {
		return err
	}
	b, err := testenv.StartBuilders(ctx, ci.Addr, filepath.Join(dir, "builders"))
	if err != nil {
		return err
	}
	defer b.Stop()
	tree := filepath.Join(dir, "tree")
	ref := reg.Addr + "/team/buildcache:main"
	block := fmt.Sprintf("\nbuild {\n  executor   = \"buildkit\"\n  cache_from = [\"type=registry,ref=%s,registry.insecure=true\"]\n  cache_to   = [\"type=registry,ref=%s,mode=max,registry.insecure=true\"]\n}\n", ref, ref)
	examples := map[string]string{"hello": "go", "c": "c", "cpp": "cpp", "rust": "rust", "python": "python", "node": "node", "java": "java"}
	for ex, language := range examples {
		d := filepath.Join(tree, "services", ex)
		if err := copyDir(filepath.Join(root, "examples", ex), d); err != nil {
			return err
		}
		image := goBuilder
		if language != "go" {
			image = b.For(language).Ref
		}
		uf, _ := os.ReadFile(filepath.Join(d, "Unikfile"))
		line := fmt.Sprintf("language = %q", language)
		s := strings.Replace(string(uf), line, line+"\n  builder  = "+strconv.Quote(image), 1) + block
		if err := os.WriteFile(filepath.Join(d, "Unikfile"), []byte(s), 0o644); err != nil {
			return err
		}
	}
	build := func(bk *testenv.BuildKit, cache string) (time.Duration, int, error) {
		cmd := exec.Command(e.bin, "build", "./...")
		cmd.Dir = tree
		cmd.Env = append(os.Environ(), "UNIKFILE_CACHE_DIR="+filepath.Join(dir, cache), "UNIKFILE_STATE_DIR="+e.state,
			"UNIKFILE_KERNEL="+e.kernel, "UNIKFILE_BUILDKIT_HOST="+bk.Addr)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("unikfile build ./...: %v\n%s", err, out.String())
		}
		return time.Since(start), strings.Count(out.String(), "compile step found in BuildKit's cache"), nil
	}
	first, _, err := build(ci, "cache-ci")
	if err != nil {
		return err
	}
	second, cached, err := build(laptop, "cache-laptop")
	if err != nil {
		return err
	}
	fmt.Printf("BuildKit registry cache across machines: %d apps, one per language (unikfile build ./...; two buildkitds with empty roots, one registry)\n", len(examples))
	fmt.Printf("%-52s %10s\n", "first machine (compiles, exports mode=max)", round(first))
	fmt.Printf("%-52s %10s  %6.2fx the first  (%d of %d compiles taken from the cache)\n\n", "second machine (imports the registry cache)", round(second), float64(second)/float64(first), cached, len(examples))
	return nil
}

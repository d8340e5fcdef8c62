package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type pruneJSON struct {
	Removed []struct {
		Kind string `json:"kind"`
		Key  string `json:"key"`
		App  string `json:"app"`
	} `json:"removed"`
	Kept      int   `json:"kept"`
	Protected int   `json:"protected"`
	Freed     int64 `json:"freed_bytes"`
	DryRun    bool  `json:"dry_run"`
}

func (p *project) prune(args ...string) pruneJSON {
	p.t.Helper()
	r := p.ok(append([]string{"images", "prune", "--json"}, args...)...)
	var out pruneJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		p.t.Fatalf("images prune --json: %v\n%s", err, r.stdout)
	}
	return out
}

func (p *project) imageDigests() map[string]bool {
	p.t.Helper()
	var imgs []struct {
		Digest string `json:"digest"`
	}
	r := p.ok("images", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &imgs); err != nil {
		p.t.Fatalf("images --json: %v\n%s", err, r.stdout)
	}
	out := map[string]bool{}
	for _, i := range imgs {
		out[i.Digest] = true
	}
	return out
}

func removedKinds(p pruneJSON) map[string]int {
	m := map[string]int{}
	for _, r := range p.Removed {
		m[r.Kind]++
	}
	return m
}

// A day of edits leaves images behind; prune removes the older builds and
// what only they used, never the image an instance runs, and keeps the
// newest build a cache hit; --all keeps only what runs; the builds after
// each prune work.
func TestImagesPrune(t *testing.T) {
	needBoot(t)
	port := freePort(t)
	p := newProject(t, map[string]string{
		"Unikfile": qemuApp(port, ""),
		"go.mod":   goMod,
		"main.go":  helloSource("v1"),
	})
	p.cacheDir = t.TempDir()
	p.ok("up")
	running := p.ps()[0].ImageDigest
	p.write("main.go", helloSource("v2"))
	v2 := jsonField(p.ok("build", "--json").stdout, "digest")
	p.write("main.go", helloSource("v3"))
	v3 := jsonField(p.ok("build", "--json").stdout, "digest")
	if imgs := p.imageDigests(); len(imgs) != 3 || !imgs[running] || !imgs[v2] || !imgs[v3] {
		t.Fatalf("images after three builds: %v", imgs)
	}

	dry := p.prune("--dry-run")
	if !dry.DryRun || len(dry.Removed) != 2 || removedKinds(dry)["images"] != 1 || removedKinds(dry)["bundles"] != 1 {
		t.Fatalf("dry run: %+v; want v2's image and bundle", dry)
	}
	if len(p.imageDigests()) != 3 {
		t.Fatal("a dry run removed an image")
	}
	res := p.prune()
	if len(res.Removed) != 2 || res.Freed <= 0 {
		t.Fatalf("prune: %+v", res)
	}
	if imgs := p.imageDigests(); len(imgs) != 2 || !imgs[running] || !imgs[v3] {
		t.Fatalf("after prune: %v; want the running image and the newest", imgs)
	}
	// The newest build is still a cache hit.
	r := p.ok("build")
	if !hasLine(r.stderr, "compile a", "up to date") || !hasLine(r.stderr, "package a", "up to date") {
		t.Fatalf("the build after a prune rebuilt the newest build:\n%s", r.stderr)
	}
	// --all keeps only what the instance uses; it still answers.
	all := p.prune("--all")
	if imgs := p.imageDigests(); len(imgs) != 1 || !imgs[running] || len(all.Removed) == 0 {
		t.Fatalf("after prune --all: %v (%+v)", imgs, all)
	}
	if got := get(t, port); got != "v1\n" {
		t.Fatalf("the instance answers %q after prune --all", got)
	}
	// The human output says what went and what stays.
	p.write("main.go", helloSource("v4"))
	p.ok("build")
	if out := p.ok("images", "prune", "--all", "--dry-run").stdout; !strings.Contains(out, "Would remove") || !strings.Contains(out, "images") {
		t.Fatalf("prune --dry-run output:\n%s", out)
	}
	p.ok("down")
	p.prune("--all")
	if imgs := p.imageDigests(); len(imgs) != 0 {
		t.Fatalf("images after down and prune --all: %v", imgs)
	}
	ents, _ := os.ReadDir(filepath.Join(p.cacheDir, "tmp"))
	if len(ents) != 0 {
		t.Fatalf("the cache's tmp holds %v after the prunes", ents)
	}
	// Nothing left that a build trusts wrongly: it rebuilds and boots.
	p.ok("up")
	if got := get(t, port); got != "v4\n" {
		t.Fatalf("after the prunes: %q", got)
	}
}

// Bad flags are errors that say what to write.
func TestImagesPruneFlags(t *testing.T) {
	p := newProject(t, nil)
	p.cacheDir = t.TempDir()
	for _, c := range [][]string{{"--keep-size", "lots"}, {"--older-than", "soon"}} {
		r := p.run(append([]string{"images", "prune"}, c...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c[0]) {
			t.Errorf("images prune %v: exit %d\n%s", c, r.code, r.stderr)
		}
	}
	r := p.ok("images", "prune")
	if !strings.Contains(r.stdout, "Removed 0 entries") {
		t.Errorf("prune of an empty cache: %s", r.stdout)
	}
}

package gc

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/stamp"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

type fixture struct {
	t  *testing.T
	cs *cache.Store
	st *state.Store
	at time.Time
}

func newFixture(t *testing.T) *fixture {
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, cs: cs, st: st, at: time.Now().Add(-100 * time.Hour)}
}

// entry fills an entry made at the fixture's clock, which then moves on an
// hour; img, if set, is its image.json.
func (f *fixture) entry(kind, key string, img *pack.Image, from ...string) string {
	f.t.Helper()
	dir, _, err := f.cs.Fill(context.Background(), kind, key, func(ctx context.Context, dir string) error {
		if img != nil {
			b, _ := json.Marshal(img)
			if err := os.WriteFile(filepath.Join(dir, pack.ImageFile), b, 0o644); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(dir, "data"), make([]byte, 4096), 0o644)
	}, from...)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, ".unikfile-entry.json"), filepath.Join(f.cs.Dir(), "used", kind, key)} {
		if err := os.Chtimes(p, f.at, f.at); err != nil {
			f.t.Fatal(err)
		}
	}
	f.at = f.at.Add(time.Hour)
	return dir
}

func (f *fixture) prune(opts Options) []string {
	f.t.Helper()
	res, err := Prune(context.Background(), f.cs, f.st, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, r := range res.Removed {
		out = append(out, r.ID())
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A day of edits: three builds of app api, whose first image an instance
// uses, two of web and a raw disk of its newest, a bundle nothing uses.
func TestPruneKeepsWhatRunsAndTheNewestBuilds(t *testing.T) {
	f := newFixture(t)
	b1 := f.entry("bundles", "b1", nil)
	b2 := f.entry("bundles", "b2", nil)
	b3 := f.entry("bundles", "b3", nil)
	init := f.entry("init", "i", nil)
	api1 := f.entry("images", "api1", &pack.Image{App: "api", Format: pack.FormatKernelInitrd, Digest: "d-api1"}, b1, filepath.Join(init, "init"))
	f.entry("images", "api2", &pack.Image{App: "api", Format: pack.FormatKernelInitrd, Digest: "d-api2"}, b2, init)
	f.entry("images", "api3", &pack.Image{App: "api", Format: pack.FormatKernelInitrd, Digest: "d-api3"}, b3, init)
	f.entry("images", "web1", &pack.Image{App: "web", Format: pack.FormatKernelInitrd, Digest: "d-web1"})
	f.entry("images", "web2", &pack.Image{App: "web", Format: pack.FormatKernelInitrd, Digest: "d-web2"})
	// A disk made before references were recorded: linked by Source.
	f.entry("images", "webraw", &pack.Image{App: "web", Format: "raw", Boot: "bios", Digest: "d-webraw", Source: "d-web2"})
	f.entry("bundles", "orphan", nil)
	if err := f.st.Put(&state.Instance{ID: "api-1", Project: "/p", Target: "dev", App: "api", Provider: "qemu",
		ImageDigest: "d-api1", ImageDir: api1, State: state.Exited}); err != nil {
		t.Fatal(err)
	}

	dry := f.prune(Options{DryRun: true})
	want := []string{"bundles/b2", "bundles/orphan", "images/api2", "images/web1"}
	if !equal(dry, want) {
		t.Fatalf("dry run removes %v, want %v", dry, want)
	}
	if got := f.prune(Options{}); !equal(got, want) {
		t.Fatalf("prune removed %v, want %v", got, want)
	}
	// What stays: the instance's image and what it was made from, the
	// newest image of each app (api3, web2; webraw is the newest raw
	// disk of web) with theirs.
	for _, id := range [][2]string{{"images", "api1"}, {"bundles", "b1"}, {"init", "i"}, {"images", "api3"}, {"bundles", "b3"}, {"images", "web2"}, {"images", "webraw"}} {
		if _, ok := f.cs.Verify(id[0], id[1]); !ok {
			t.Errorf("%s/%s was removed", id[0], id[1])
		}
	}
	// --all: only what the instance uses.
	if got := f.prune(Options{All: true}); !equal(got, []string{"bundles/b3", "images/api3", "images/web2", "images/webraw"}) {
		t.Fatalf("--all removed %v", got)
	}
	for _, id := range [][2]string{{"images", "api1"}, {"bundles", "b1"}, {"init", "i"}} {
		if _, ok := f.cs.Verify(id[0], id[1]); !ok {
			t.Errorf("--all removed %s/%s, which the instance uses", id[0], id[1])
		}
	}
	// The instance's record gone, --all empties the cache.
	if err := f.st.Delete("api-1"); err != nil {
		t.Fatal(err)
	}
	if got := f.prune(Options{All: true}); len(got) != 3 {
		t.Fatalf("--all without instances removed %v", got)
	}
}

// A build stamp names the images it produced: a prune keeps them (the
// stamp stays replayable), and removes the stamps of what it removes.
func TestPruneKeepsStampedImagesAndDropsStaleStamps(t *testing.T) {
	f := newFixture(t)
	old := f.entry("images", "old", &pack.Image{App: "a", Format: pack.FormatKernelInitrd, Digest: "1"})
	f.entry("images", "new", &pack.Image{App: "a", Format: pack.FormatKernelInitrd, Digest: "2"})
	other := f.entry("images", "other", &pack.Image{App: "b", Format: pack.FormatKernelInitrd, Digest: "3"})
	f.entry("images", "other2", &pack.Image{App: "b", Format: pack.FormatKernelInitrd, Digest: "4"})
	stamps := filepath.Join(f.cs.Dir(), "stamps")
	os.MkdirAll(stamps, 0o755)
	for name, dir := range map[string]string{"s-old": old, "s-other": other} {
		sc2 := cache.OpenStatCache(filepath.Join(t.TempDir(), "sc"))
		sc2.Saw(dir)
		snap, _ := sc2.Snapshot()
		if err := cache.WriteStamp(filepath.Join(stamps, name), "key", snap, stamp.Replay{Stdout: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.prune(Options{}); len(got) != 0 {
		t.Fatalf("removed %v; the stamped and the newest images stay", got)
	}
	if got := f.prune(Options{All: true}); len(got) != 4 {
		t.Fatalf("--all removed %v", got)
	}
	if des, _ := os.ReadDir(stamps); len(des) != 0 {
		t.Errorf("stamps of removed images stay: %v", des)
	}
}

func TestAutoAppliesTheLimitsAtMostHourly(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{"a1", "a2", "a3"} {
		f.entry("images", k, &pack.Image{App: "a", Format: pack.FormatKernelInitrd, Digest: k})
	}
	res, err := Auto(context.Background(), f.cs, f.st, Limits{MaxSize: 1 << 40})
	if err != nil || len(res.Removed) != 0 {
		t.Fatalf("under the limit: %v, %v", res.Removed, err)
	}
	// Checked an hour ago at the latest: not again.
	os.Remove(filepath.Join(f.cs.Dir(), lastAutoFile))
	res, err = Auto(context.Background(), f.cs, f.st, Limits{MaxSize: 1})
	if err != nil || len(res.Removed) != 2 {
		t.Fatalf("over the limit: removed %v, %v; want the two older images, not the newest", res.Removed, err)
	}
	f.entry("images", "a4", &pack.Image{App: "a", Format: pack.FormatKernelInitrd, Digest: "a4"})
	res, err = Auto(context.Background(), f.cs, f.st, Limits{MaxSize: 1})
	if err != nil || !res.Skipped {
		t.Fatalf("a second check within the hour: %+v, %v", res, err)
	}
	if res, _ := Auto(context.Background(), f.cs, f.st, Limits{}); !res.Skipped {
		t.Fatal("limits off did something")
	}
}

func TestLimitsFromEnv(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if l, err := LimitsFromEnv(get); err != nil || l.MaxSize != DefaultMaxSize || l.MaxAge != 0 {
		t.Fatalf("defaults: %+v, %v", l, err)
	}
	env[MaxSizeEnv], env[MaxAgeEnv] = "1.5GiB", "30d"
	if l, err := LimitsFromEnv(get); err != nil || l.MaxSize != 3<<29 || l.MaxAge != 720*time.Hour {
		t.Fatalf("set: %+v, %v", l, err)
	}
	env[MaxSizeEnv] = "off"
	if l, _ := LimitsFromEnv(get); l.MaxSize != 0 {
		t.Fatalf("off: %+v", l)
	}
	for _, bad := range []string{"lots", "10XB", "-1"} {
		env[MaxSizeEnv] = bad
		if _, err := LimitsFromEnv(get); err == nil {
			t.Errorf("%s=%q accepted", MaxSizeEnv, bad)
		}
	}
	env[MaxSizeEnv], env[MaxAgeEnv] = "", "soon"
	if _, err := LimitsFromEnv(get); err == nil {
		t.Error("a bad age accepted")
	}
	for in, want := range map[string]int64{"100": 100, "4k": 4096, "2MB": 2 << 20, "1 GiB": 1 << 30, "0.5t": 1 << 39} {
		if n, err := ParseSize(in); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, n, err)
		}
	}
}

// The kernels a kernel prune keeps for this cache: those of the images a
// prune keeps (the newest of each app, what instances use, a disk's
// kernel+initrd image), by the digest of their kernel file, and what
// stamps name; with all, only the instances' images.
func TestKernelsKept(t *testing.T) {
	f := newFixture(t)
	withKernel := func(key, body string, img pack.Image) string {
		dir := f.entry("images", key, &img)
		if err := os.WriteFile(filepath.Join(dir, "kernel"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	lin := func(app, digest string) pack.Image {
		return pack.Image{App: app, Base: "linux", Format: pack.FormatKernelInitrd, Kernel: "kernel", Digest: digest}
	}
	running := withKernel("a1", "k-running", lin("a", "d-a1"))
	withKernel("a2", "k-old", lin("a", "d-a2"))
	withKernel("a3", "k-newest", lin("a", "d-a3"))
	withKernel("b1", "k-disk-source", lin("b", "d-b1"))
	withKernel("b2", "k-b-newer", lin("b", "d-b2"))
	f.entry("images", "braw", &pack.Image{App: "b", Base: "linux", Format: "raw", Boot: "bios", Digest: "d-braw", Source: "d-b1"})
	if err := f.st.Put(&state.Instance{ID: "a-1", Project: "/p", Target: "dev", App: "a", Provider: "qemu",
		ImageDigest: "d-a1", ImageDir: running, State: state.Running}); err != nil {
		t.Fatal(err)
	}
	stamps := filepath.Join(f.cs.Dir(), "stamps")
	os.MkdirAll(stamps, 0o755)
	sc := cache.OpenStatCache(filepath.Join(t.TempDir(), "sc"))
	sc.Saw("/kbuild/objects/kernel/k1")
	snap, _ := sc.Snapshot()
	if err := cache.WriteStamp(filepath.Join(stamps, "s"), "key", snap, stamp.Replay{}); err != nil {
		t.Fatal(err)
	}
	digest := func(s string) string { return sha(t, s) }
	roots, err := KernelsKept(f.cs, f.st, false, cache.FileDigest)
	if err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]bool{"k-running": true, "k-old": false, "k-newest": true, "k-disk-source": true, "k-b-newer": true} {
		if roots.Digests[digest(body)] != want {
			t.Errorf("kernel %s kept = %v, want %v", body, !want, want)
		}
	}
	if len(roots.Digests) != 4 || len(roots.Paths) != 1 || roots.Paths[0] != "/kbuild/objects/kernel/k1" {
		t.Errorf("roots %+v", roots)
	}
	roots, err = KernelsKept(f.cs, f.st, true, cache.FileDigest)
	if err != nil {
		t.Fatal(err)
	}
	if len(roots.Digests) != 1 || !roots.Digests[digest("k-running")] || len(roots.Paths) != 0 {
		t.Errorf("with all: %+v", roots)
	}
}

func sha(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := cache.FileDigest(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

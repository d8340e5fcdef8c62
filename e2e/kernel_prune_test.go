package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
	"github.com/unikfile/unikfile/state"
)

type kernelPruneJSON struct {
	Kernels []struct {
		Key string `json:"key"`
	} `json:"kernels"`
	Sources []struct {
		Version string `json:"version"`
	} `json:"sources"`
	Trees []struct {
		Version string `json:"version"`
		Family  string `json:"family"`
	} `json:"trees"`
	Busy []struct {
		Dir string `json:"dir"`
	} `json:"busy"`
	Swept       []struct{ Dir string } `json:"swept"`
	KeptSources []string               `json:"kept_sources"`
	Freed       int64                  `json:"freed_bytes"`
	DryRun      bool                   `json:"dry_run"`
}

// kfake lays out a kbuild folder as builds leave it, without compiling:
// sources, object trees with their locks, kernels in the store.
type kfake struct {
	t    *testing.T
	root string
}

func (k *kfake) file(rel string, size int, at time.Time) {
	k.t.Helper()
	p := filepath.Join(k.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		k.t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		k.t.Fatal(err)
	}
}

func (k *kfake) source(v string, at time.Time, trees ...string) {
	k.file(filepath.Join("src", v, "Makefile"), 100, at)
	k.file(filepath.Join("src", v, "mm", "page_alloc.c"), 256<<10, at)
	for _, f := range trees {
		k.file(filepath.Join("trees", v, f, "vmlinux"), 128<<10, at)
		k.file(filepath.Join("trees", v, f, "unikfile.fragment"), 10, at)
		k.file(filepath.Join("trees", v, f+".lock"), 0, at)
		os.Chtimes(filepath.Join(k.root, "trees", v, f), at, at)
	}
}

// kernel stores a built kernel whose file holds body, last used at.
func (k *kfake) kernel(key, v string, features []string, body string, at time.Time) string {
	k.t.Helper()
	store, err := cache.Open(k.root)
	if err != nil {
		k.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	info := kbuild.Kernel{Key: key, Release: "6.1.0-unikfile", Source: kbuild.SourcePackage + " " + v, Features: features,
		File: kbuild.FileVMLinux, Digest: hex.EncodeToString(sum[:]), Size: int64(len(body))}
	dir, _, err := store.Fill(context.Background(), "kernel", key, func(ctx context.Context, out string) error {
		if err := os.WriteFile(filepath.Join(out, info.File), []byte(body), 0o644); err != nil {
			return err
		}
		b, _ := json.Marshal(info)
		return os.WriteFile(filepath.Join(out, kbuild.FileInfo), b, 0o644)
	})
	if err != nil {
		k.t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, ".unikfile-entry.json"), filepath.Join(k.root, "used", "kernel", key)} {
		if err := os.Chtimes(p, at, at); err != nil {
			k.t.Fatal(err)
		}
	}
	return dir
}

// image stores a kernel+initrd image of app whose kernel file holds
// body, as the linux base does (a copy of the built kernel).
func image(t *testing.T, cs *cache.Store, key, app, body string, at time.Time) string {
	t.Helper()
	dir, _, err := cs.Fill(context.Background(), "images", key, func(ctx context.Context, out string) error {
		if err := os.WriteFile(filepath.Join(out, "kernel"), []byte(body), 0o644); err != nil {
			return err
		}
		b, _ := json.Marshal(pack.Image{App: app, Base: "linux", Format: pack.FormatKernelInitrd, Kernel: "kernel", Digest: "d-" + key})
		return os.WriteFile(filepath.Join(out, pack.ImageFile), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, ".unikfile-entry.json"), filepath.Join(cs.Dir(), "used", "images", key)} {
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (p *project) kernelPrune(args ...string) kernelPruneJSON {
	p.t.Helper()
	r := p.ok(append([]string{"kernel", "prune", "--json"}, args...)...)
	var out kernelPruneJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		p.t.Fatalf("kernel prune --json: %v\n%s", err, r.stdout)
	}
	return out
}

func (p *project) builtKernels() []string {
	p.t.Helper()
	r := p.ok("kernel", "ls", "--json")
	var ks []struct {
		Kind    string
		Path    string
		Version string
	}
	if err := json.Unmarshal([]byte(r.stdout), &ks); err != nil {
		p.t.Fatalf("kernel ls --json: %v\n%s", err, r.stdout)
	}
	var out []string
	for _, k := range ks {
		if k.Kind == "minimal" {
			out = append(out, filepath.Base(filepath.Dir(k.Path)))
		}
	}
	sort.Strings(out)
	return out
}

// Debian's source moved on and the PVH recipe changed: kernel prune
// removes the kernels no newest build uses, the old source and its
// trees, keeps the kernel of the newest image of an app and the current
// source; a tree another process's build holds stays with its source;
// what a killed prune left is never listed and is swept; --all keeps
// only the kernel of the image an instance uses. All through the binary,
// on a kbuild folder of its own.
func TestKernelPrune(t *testing.T) {
	kb := &kfake{t: t, root: filepath.Join(t.TempDir(), "kbuild")}
	p := &project{t: t, dir: t.TempDir(), cacheDir: t.TempDir(), stateDir: t.TempDir(),
		env: []string{"UNIKFILE_KBUILD_DIR=" + kb.root}}
	old := time.Now().Add(-200 * time.Hour)
	kb.source("6.1.190-1", old, "microvm", "pc")
	kb.source("6.1.192-3", old, "microvm")
	kb.kernel("aaold", "6.1.190-1", []string{"pvh", "virtio-mmio"}, "kernel old", old)
	kb.kernel("bbrunning", "6.1.192-3", []string{"pvh", "virtio-mmio"}, "kernel running", old.Add(time.Hour))
	kb.kernel("ccprevious", "6.1.192-3", []string{"pvh", "virtio-mmio"}, "kernel previous", old.Add(2*time.Hour))
	kb.kernel("ddnewest", "6.1.192-3", []string{"pvh", "virtio-mmio"}, "kernel newest", old.Add(3*time.Hour))

	// The cache: three builds of app hello; an instance runs the first.
	cs, err := cache.Open(p.cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	runningImg := image(t, cs, "img1", "hello", "kernel running", old.Add(time.Hour))
	image(t, cs, "img2", "hello", "kernel previous", old.Add(2*time.Hour))
	image(t, cs, "img3", "hello", "kernel newest", old.Add(3*time.Hour))
	st, err := state.Open(p.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(&state.Instance{ID: "hello-1", Project: p.dir, Target: "dev", App: "hello", Provider: "qemu",
		ImageDigest: "d-img1", ImageDir: runningImg, State: state.Exited}); err != nil {
		t.Fatal(err)
	}

	dry := p.kernelPrune("--dry-run")
	keys := func(r kernelPruneJSON) string {
		var out []string
		for _, k := range r.Kernels {
			out = append(out, k.Key)
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	if got := keys(dry); got != "aaold ccprevious" || !dry.DryRun || len(dry.Sources) != 1 || dry.Sources[0].Version != "6.1.190-1" || len(dry.Trees) != 2 || dry.Freed == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	if got := p.builtKernels(); len(got) != 4 {
		t.Fatalf("the dry run removed kernels: kernel ls lists %v", got)
	}
	if _, err := os.Stat(filepath.Join(kb.root, "src", "6.1.190-1", "Makefile")); err != nil {
		t.Fatalf("the dry run removed the old source: %v", err)
	}

	// Another process builds in the old source's pc tree: the old
	// version stays whole, and the prune says so.
	lock := filepath.Join(kb.root, "trees", "6.1.190-1", "pc.lock")
	builder := exec.Command("flock", lock, "sleep", "120")
	builder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // flock and its sleep, which holds the lock too
	if err := builder.Start(); err != nil {
		t.Skipf("flock(1): %v", err)
	}
	stopBuilder := func() {
		syscall.Kill(-builder.Process.Pid, syscall.SIGKILL)
		builder.Wait()
	}
	defer stopBuilder()
	waitLocked(t, lock)
	r := p.ok("kernel", "prune")
	if !strings.Contains(r.stdout, "Left "+filepath.Join(kb.root, "trees", "6.1.190-1", "pc")+" and the rest of source 6.1.190-1: a kernel build is compiling in it") {
		t.Errorf("the prune does not say what it left:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^Removed 2 kernels \([0-9.]+ [KMG]?i?B\); kept 2 kernels \(2 that the newest builds or instances' images use\), sources 6\.1\.190-1, 6\.1\.192-3 and 3 object trees; the kbuild folder holds `).MatchString(r.stdout) {
		t.Errorf("summary:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(kb.root, "src", "6.1.190-1", "Makefile")); err != nil {
		t.Errorf("the source of a tree a build holds went: %v", err)
	}
	stopBuilder()

	// A prune killed after its renames: a kernel and a source moved
	// aside, half deleted.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	aside := filepath.Join(kb.root, "tmp", strconv.Itoa(dead.Process.Pid)+"-prune-kernel-ddnewest")
	if err := os.Rename(filepath.Join(kb.root, "objects", "kernel", "ddnewest"), aside); err != nil {
		t.Fatal(err)
	}
	if got := p.builtKernels(); strings.Join(got, " ") != "bbrunning" {
		t.Errorf("with a kernel moved aside, kernel ls lists %v", got)
	}
	leftover := filepath.Join(kb.root, "tmp", strconv.Itoa(dead.Process.Pid)+"-prune-src-6.1.190-1")
	kb.file(filepath.Join("tmp", filepath.Base(leftover), "half", "deleted.c"), 4096, old)
	r = p.ok("kernel", "prune")
	for _, want := range []string{
		"Swept " + leftover,
		"Removed source 6.1.190-1 and its 2 object trees (",
		"kept 1 kernel (1 that the newest builds or instances' images use), source 6.1.192-3 and 1 object tree",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("second prune: no %q in\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(leftover); err == nil {
		t.Error("the killed prune's folder was not swept")
	}
	if _, err := os.Stat(filepath.Join(kb.root, "src", "6.1.190-1")); err == nil {
		t.Error("the old source stays")
	}

	// --all: the current source and its tree go; the kernel of the
	// instance's image stays.
	all := p.kernelPrune("--all")
	if len(all.Sources) != 1 || all.Sources[0].Version != "6.1.192-3" || len(all.Trees) != 1 || len(all.KeptSources) != 0 {
		t.Errorf("--all: %+v", all)
	}
	if got := p.builtKernels(); strings.Join(got, " ") != "bbrunning" {
		t.Errorf("after --all kernel ls lists %v", got)
	}
	if des, _ := os.ReadDir(filepath.Join(kb.root, "tmp")); len(des) != 0 {
		t.Errorf("tmp holds %d folders", len(des))
	}
	// Bad flags exit 1.
	if r := p.run("kernel", "prune", "--older-than", "soon"); r.code != 1 || !strings.Contains(r.stderr, "--older-than") {
		t.Errorf("--older-than soon: exit %d, %s", r.code, r.stderr)
	}
}

// waitLocked waits until another process holds the flock on path.
func waitLocked(t *testing.T, path string) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		f.Close()
		if err != nil {
			return
		}
	}
	t.Fatalf("no process took %s", path)
}

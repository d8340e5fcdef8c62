package kbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
)

// kfolder is a kbuild folder laid out as Build and FetchSource leave it,
// with fake contents: no compile.
type kfolder struct {
	t    *testing.T
	root string
}

func newKFolder(t *testing.T) *kfolder {
	return &kfolder{t: t, root: filepath.Join(t.TempDir(), "kbuild")}
}

var longAgo = time.Now().Add(-100 * time.Hour)

// source unpacks a fake source version (its Makefile and some bytes).
func (f *kfolder) source(version string) string {
	f.t.Helper()
	dir := filepath.Join(srcRoot(f.root), version)
	f.write(filepath.Join(dir, "Makefile"), 100)
	f.write(filepath.Join(dir, "kernel", "sched.c"), 64<<10)
	f.age(dir, longAgo)
	return dir
}

// tree makes the object tree of version and family, last compiled at.
func (f *kfolder) tree(version, fam string, at time.Time) string {
	f.t.Helper()
	src := &Source{Version: version, Dir: filepath.Join(srcRoot(f.root), version)}
	n := Needs{}
	if fam == FamilyMicroVM {
		n.Features = []string{"pvh"}
	}
	dir := treeDir(f.root, src, n)
	if dir != filepath.Join(f.root, "trees", version, fam) {
		f.t.Fatalf("treeDir = %s", dir)
	}
	f.write(filepath.Join(dir, "vmlinux"), 32<<10)
	f.write(filepath.Join(dir, "unikfile.fragment"), 10)
	// The lock a build takes (and leaves, an empty file).
	unlock, err := lockFile(context.Background(), dir+".lock", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	unlock()
	f.age(filepath.Join(dir, "unikfile.fragment"), at)
	f.age(dir, at)
	return dir
}

// kernel stores a built kernel of version with features, last used at.
func (f *kfolder) kernel(key, version string, features []string, at time.Time) *Kernel {
	f.t.Helper()
	store, err := cache.Open(f.root)
	if err != nil {
		f.t.Fatal(err)
	}
	body := []byte("kernel " + key)
	sum := sha256.Sum256(body)
	k := &Kernel{Key: key, Release: "6.1.0-unikfile", Source: SourcePackage + " " + version, Features: features,
		File: FileVMLinux, Digest: hex.EncodeToString(sum[:]), Size: int64(len(body))}
	dir, _, err := store.Fill(context.Background(), kindKernel, key, func(ctx context.Context, out string) error {
		if err := os.WriteFile(filepath.Join(out, k.File), body, 0o644); err != nil {
			return err
		}
		js, _ := json.Marshal(k)
		return os.WriteFile(filepath.Join(out, FileInfo), js, 0o644)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.age(filepath.Join(dir, ".unikfile-entry.json"), at)
	f.age(filepath.Join(f.root, "used", kindKernel, key), at)
	k.Dir = dir
	return k
}

func (f *kfolder) write(path string, size int) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *kfolder) age(path string, at time.Time) {
	f.t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		f.t.Fatal(err)
	}
}

func (f *kfolder) prune(opts PruneOptions) PruneResult {
	f.t.Helper()
	res, err := Prune(context.Background(), f.root, opts)
	if err != nil {
		f.t.Fatalf("Prune: %v", err)
	}
	return res
}

// listed are the keys of the kernels List (kernel ls) shows.
func (f *kfolder) listed() []string {
	f.t.Helper()
	ks, err := List(f.root)
	if err != nil {
		f.t.Fatal(err)
	}
	var keys []string
	for _, k := range ks {
		keys = append(keys, k.Key)
	}
	sort.Strings(keys)
	return keys
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func kernelKeys(ks []PrunedKernel) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Key)
	}
	sort.Strings(out)
	return out
}

func dirsOf(ds []PrunedDir) []string {
	var out []string
	for _, d := range ds {
		if d.Family != "" {
			out = append(out, d.Version+"/"+d.Family)
		} else {
			out = append(out, d.Version)
		}
	}
	sort.Strings(out)
	return out
}

func same(a, b []string) bool {
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

// The layout after Debian's source moved from 6.1.190-1 to 6.1.192-3
// and the PVH recipe changed: kernels of both, trees of both.
func oldAndNew(t *testing.T) (*kfolder, map[string]*Kernel) {
	f := newKFolder(t)
	f.source("6.1.190-1")
	f.tree("6.1.190-1", FamilyMicroVM, longAgo)
	f.tree("6.1.190-1", FamilyPC, longAgo)
	f.source("6.1.192-3")
	f.tree("6.1.192-3", FamilyMicroVM, longAgo)
	f.tree("6.1.192-3", FamilyPC, longAgo)
	ks := map[string]*Kernel{
		"old":     f.kernel("old", "6.1.190-1", []string{"pvh", "virtio-mmio"}, longAgo),
		"oldpvh1": f.kernel("oldpvh1", "6.1.192-3", []string{"pvh", "virtio-mmio"}, longAgo.Add(time.Hour)),
		"newest":  f.kernel("newest", "6.1.192-3", []string{"pvh", "virtio-mmio"}, longAgo.Add(2*time.Hour)),
		"pc":      f.kernel("pc", "6.1.192-3", []string{"pci", "virtio-pci"}, longAgo.Add(3*time.Hour)),
		"stamped": f.kernel("stamped", "6.1.192-3", []string{"pvh", "root-disk", "virtio-mmio"}, longAgo.Add(4*time.Hour)),
	}
	return f, ks
}

// A prune keeps the kernels its caller names (by digest: an image's
// copy; by path: a stamp) and removes the others, the superseded
// source with its trees, and the trees of the current source no kept
// kernel was built in; a dry run lists the same and removes nothing.
func TestPruneRemovesOldKernelsSourcesAndTrees(t *testing.T) {
	f, ks := oldAndNew(t)
	keep := PruneOptions{
		KeepDigests: map[string]bool{ks["newest"].Digest: true},
		KeepPaths:   []string{ks["stamped"].Dir, "/elsewhere/file"},
	}
	dry := keep
	dry.DryRun = true
	d := f.prune(dry)
	wantKernels := []string{"old", "oldpvh1", "pc"}
	wantTrees := []string{"6.1.190-1/microvm", "6.1.190-1/pc", "6.1.192-3/pc"}
	if got := kernelKeys(d.Kernels); !same(got, wantKernels) {
		t.Errorf("dry run: kernels %v, want %v", got, wantKernels)
	}
	if got := dirsOf(d.Sources); !same(got, []string{"6.1.190-1"}) {
		t.Errorf("dry run: sources %v", got)
	}
	if got := dirsOf(d.Trees); !same(got, wantTrees) {
		t.Errorf("dry run: trees %v, want %v", got, wantTrees)
	}
	if !d.DryRun || d.Freed <= 64<<10 || d.Current != "6.1.192-3" {
		t.Errorf("dry run: %+v", d)
	}
	for _, p := range []string{filepath.Join(f.root, "src", "6.1.190-1", "Makefile"), filepath.Join(f.root, "trees", "6.1.190-1", "pc", "vmlinux"), filepath.Join(f.root, "trees", "6.1.192-3", "pc")} {
		if !exists(p) {
			t.Errorf("the dry run removed %s", p)
		}
	}
	if got := f.listed(); len(got) != 5 {
		t.Errorf("after the dry run kernel ls lists %v", got)
	}

	res := f.prune(keep)
	if got := kernelKeys(res.Kernels); !same(got, wantKernels) {
		t.Errorf("kernels removed %v, want %v", got, wantKernels)
	}
	if got := dirsOf(res.Trees); !same(got, wantTrees) {
		t.Errorf("trees removed %v, want %v", got, wantTrees)
	}
	if res.Freed != d.Freed || res.KeptKernels != 2 || res.Protected != 2 || !same(res.KeptSources, []string{"6.1.192-3"}) || res.KeptTrees != 1 {
		t.Errorf("result %+v (dry run freed %d)", res, d.Freed)
	}
	if got := f.listed(); !same(got, []string{"newest", "stamped"}) {
		t.Errorf("kernel ls lists %v after the prune", got)
	}
	if exists(filepath.Join(f.root, "src", "6.1.190-1")) || exists(filepath.Join(f.root, "trees", "6.1.190-1")) {
		t.Error("the old source or its trees are still there")
	}
	for _, p := range []string{
		filepath.Join(f.root, "src", "6.1.192-3", "Makefile"),
		filepath.Join(f.root, "trees", "6.1.192-3", "microvm", "vmlinux"),
		filepath.Join(f.root, "trees", "6.1.192-3", "pc.lock"), // builds after take it
	} {
		if !exists(p) {
			t.Errorf("%s was removed", p)
		}
	}
	if exists(filepath.Join(f.root, "trees", "6.1.192-3", "pc")) {
		t.Error("the pc tree of the current source stays though no kept kernel was built in it")
	}
	if src, _ := LatestSource(f.root); src == nil || src.Version != "6.1.192-3" {
		t.Errorf("LatestSource after the prune = %+v", src)
	}
	if des, _ := os.ReadDir(filepath.Join(f.root, "tmp")); len(des) != 0 {
		t.Errorf("the prune left %d folders in tmp", len(des))
	}
	if des, _ := os.ReadDir(filepath.Join(f.root, "used", kindKernel)); len(des) != 2 {
		t.Errorf("%d use markers left for 2 kernels", len(des))
	}

	// Again: nothing more goes. Then --all: the current source and its
	// tree, and every kernel but those named.
	if again := f.prune(keep); len(again.Kernels)+len(again.Sources)+len(again.Trees) != 0 {
		t.Errorf("a second prune removed %+v", again)
	}
	all := PruneOptions{All: true, KeepDigests: keep.KeepDigests}
	res = f.prune(all)
	if got := kernelKeys(res.Kernels); !same(got, []string{"stamped"}) {
		t.Errorf("--all removed kernels %v", got)
	}
	if got := dirsOf(res.Sources); !same(got, []string{"6.1.192-3"}) {
		t.Errorf("--all removed sources %v", got)
	}
	if got := dirsOf(res.Trees); !same(got, []string{"6.1.192-3/microvm"}) {
		t.Errorf("--all removed trees %v", got)
	}
	if exists(filepath.Join(f.root, "src", "6.1.192-3")) || exists(filepath.Join(f.root, "trees", "6.1.192-3")) {
		t.Error("--all left the current source or its trees")
	}
	if src, _ := LatestSource(f.root); src != nil {
		t.Errorf("LatestSource after --all = %+v", src)
	}
	if got := f.listed(); !same(got, []string{"newest"}) {
		t.Errorf("kernel ls lists %v after --all", got)
	}
}

// --older-than spares what was used within it: a kernel looked up, a
// tree compiled in (and its source with it), even of an older source.
func TestPruneOlderThanSparesWhatWasUsed(t *testing.T) {
	f, _ := oldAndNew(t)
	now := time.Now()
	f.age(filepath.Join(f.root, "used", kindKernel, "oldpvh1"), now.Add(-time.Hour))
	f.age(filepath.Join(f.root, "trees", "6.1.190-1", "pc", "unikfile.fragment"), now.Add(-2*time.Hour))
	res := f.prune(PruneOptions{OlderThan: 24 * time.Hour})
	if got := kernelKeys(res.Kernels); !same(got, []string{"newest", "old", "pc", "stamped"}) {
		t.Errorf("kernels removed %v", got)
	}
	// The current source's microvm tree stays for oldpvh1.
	if len(res.Sources) != 0 || !same(dirsOf(res.Trees), []string{"6.1.190-1/microvm", "6.1.192-3/pc"}) {
		t.Errorf("removed sources %v, trees %v", dirsOf(res.Sources), dirsOf(res.Trees))
	}
	if !exists(filepath.Join(f.root, "src", "6.1.190-1", "Makefile")) || !exists(filepath.Join(f.root, "trees", "6.1.190-1", "pc", "vmlinux")) {
		t.Error("the old source's tree compiled in two hours ago, or the source, went")
	}
	if got := f.listed(); !same(got, []string{"oldpvh1"}) {
		t.Errorf("kernel ls lists %v", got)
	}
}

// A tree whose lock a build holds stays, with its source and the rest
// of its trees; the prune says so, and the next one removes them.
func TestPruneLeavesATreeABuildHolds(t *testing.T) {
	f, _ := oldAndNew(t)
	tree := filepath.Join(f.root, "trees", "6.1.190-1", FamilyPC)
	unlock, err := lockFile(context.Background(), tree+".lock", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := f.prune(PruneOptions{})
	if len(res.Busy) != 1 || res.Busy[0].Dir != tree || res.Busy[0].Version != "6.1.190-1" {
		t.Errorf("busy %+v", res.Busy)
	}
	if len(res.Sources) != 0 || !same(dirsOf(res.Trees), []string{"6.1.192-3/microvm", "6.1.192-3/pc"}) {
		t.Errorf("with a build in the old source's tree: removed sources %v, trees %v", dirsOf(res.Sources), dirsOf(res.Trees))
	}
	for _, p := range []string{filepath.Join(tree, "vmlinux"), filepath.Join(f.root, "src", "6.1.190-1", "Makefile"), filepath.Join(f.root, "trees", "6.1.190-1", "microvm", "vmlinux")} {
		if !exists(p) {
			t.Errorf("%s went while a build held the tree", p)
		}
	}
	if !same(res.KeptSources, []string{"6.1.190-1", "6.1.192-3"}) {
		t.Errorf("kept sources %v", res.KeptSources)
	}
	unlock()
	res = f.prune(PruneOptions{})
	if len(res.Busy) != 0 || !same(dirsOf(res.Sources), []string{"6.1.190-1"}) || !same(dirsOf(res.Trees), []string{"6.1.190-1/microvm", "6.1.190-1/pc"}) {
		t.Errorf("after the build: busy %v, sources %v, trees %v", res.Busy, dirsOf(res.Sources), dirsOf(res.Trees))
	}
}

// A build holds the folder's GC lock: a prune that does not wait does
// nothing, one that waits starts when the build is done.
func TestPruneWaitsForBuilds(t *testing.T) {
	f, _ := oldAndNew(t)
	store, err := cache.Open(f.root)
	if err != nil {
		t.Fatal(err)
	}
	release, err := store.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res := f.prune(PruneOptions{}); !res.Skipped || len(res.Kernels)+len(res.Sources) != 0 {
		t.Fatalf("a prune that does not wait, during a build: %+v", res)
	}
	waiting := make(chan struct{})
	done := make(chan PruneResult, 1)
	go func() {
		res, err := Prune(context.Background(), f.root, PruneOptions{Wait: true, Waiting: func() { close(waiting) }})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the prune did not say it waits")
	}
	select {
	case res := <-done:
		t.Fatalf("the prune ran during the build: %+v", res)
	case <-time.After(300 * time.Millisecond):
	}
	if got := f.listed(); len(got) != 5 {
		t.Fatalf("kernels went during the build: %v", got)
	}
	release()
	select {
	case res := <-done:
		if len(res.Kernels) != 5 || len(res.Sources) != 1 {
			t.Errorf("after the build the prune removed %v and sources %v", kernelKeys(res.Kernels), dirsOf(res.Sources))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the prune did not run after the build")
	}
}

// A prune killed between its renames and its deletions leaves folders
// in tmp: kernel ls never lists them, LatestSource never picks them, and
// the next prune sweeps them.
func TestPruneSweepsWhatAKilledPruneLeft(t *testing.T) {
	f, ks := oldAndNew(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(dead.Process.Pid)
	tmp := filepath.Join(f.root, "tmp")
	// What a killed prune leaves: a kernel, a newer source and a tree
	// renamed aside, and half deleted.
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ks["pc"].Dir, filepath.Join(tmp, pid+"-prune-kernel-pc")); err != nil {
		t.Fatal(err)
	}
	f.write(filepath.Join(tmp, pid+"-prune-src-6.1.199-1", "Makefile"), 100)
	f.write(filepath.Join(tmp, pid+"-prune-src-6.1.199-1", "half", "deleted.c"), 4096)
	f.write(filepath.Join(tmp, pid+"-prune-tree-6.1.192-3-pc", "vmlinux"), 4096)
	if got := f.listed(); !same(got, []string{"newest", "old", "oldpvh1", "stamped"}) {
		t.Errorf("kernel ls lists %v", got)
	}
	if src, _ := LatestSource(f.root); src == nil || src.Version != "6.1.192-3" {
		t.Errorf("LatestSource = %+v", src)
	}
	// kernel ls's own opening of the folder sweeps too; put them back
	// to see the prune's sweep and report.
	f.write(filepath.Join(tmp, pid+"-prune-src-6.1.199-1", "Makefile"), 100)
	f.write(filepath.Join(tmp, pid+"-prune-tree-6.1.192-3-pc", "vmlinux"), 4096)
	res := f.prune(PruneOptions{DryRun: true})
	if len(res.Swept) != 2 || res.SweptBytes == 0 {
		t.Errorf("swept %+v", res.Swept)
	}
	if des, _ := os.ReadDir(tmp); len(des) != 0 {
		t.Errorf("tmp holds %d folders after the prune", len(des))
	}
	// The running prune's own folders are not swept.
	mine := filepath.Join(tmp, strconv.Itoa(os.Getpid())+"-prune-src-x")
	f.write(filepath.Join(mine, "Makefile"), 10)
	f.prune(PruneOptions{DryRun: true})
	if !exists(mine) {
		t.Error("a prune swept a folder of a running process")
	}
}

// A source that is a symbolic link (as the tests link the machine's)
// goes as a link: what it points to stays.
func TestPruneRemovesALinkedSourceNotItsTarget(t *testing.T) {
	f := newKFolder(t)
	elsewhere := filepath.Join(t.TempDir(), "linux-source")
	f.write(filepath.Join(elsewhere, "Makefile"), 100)
	if err := os.MkdirAll(srcRoot(f.root), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(srcRoot(f.root), "6.1.1-1")); err != nil {
		t.Fatal(err)
	}
	f.source("6.1.2-1")
	res := f.prune(PruneOptions{})
	if len(res.Sources) != 1 || res.Sources[0].Link != elsewhere || res.Sources[0].Size != 0 {
		t.Errorf("removed %+v", res.Sources)
	}
	if !exists(filepath.Join(elsewhere, "Makefile")) {
		t.Fatal("the prune removed what a linked source points to")
	}
	if exists(filepath.Join(srcRoot(f.root), "6.1.1-1")) {
		t.Error("the link stays")
	}
}

// A folder with nothing in it yet prunes to nothing.
func TestPruneOfNoFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "none")
	res, err := Prune(context.Background(), root, PruneOptions{})
	if err != nil || len(res.Kernels)+len(res.Sources)+len(res.Trees) != 0 {
		t.Errorf("Prune of a missing folder: %+v, %v", res, err)
	}
	if exists(root) {
		t.Error("Prune created the folder")
	}
}

// A build waits while a prune holds the folder, even for a kernel that
// is built already (the prune may be removing it), and goes on after.
func TestBuildWaitsForAPrune(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("a kernel's key names the compiler: no gcc")
	}
	f := newKFolder(t)
	f.source("6.1.192-3")
	b := &Builder{Root: f.root}
	n, _ := NeedsFor("go", Platform{})
	p, err := b.Plan(context.Background(), n)
	if err != nil || p.Key == "" {
		t.Fatalf("Plan: %+v, %v", p, err)
	}
	f.kernel(p.Key, "6.1.192-3", n.Features, time.Now())
	store, err := cache.Open(f.root)
	if err != nil {
		t.Fatal(err)
	}
	release, ok, err := store.Lock(context.Background(), false, nil)
	if err != nil || !ok {
		t.Fatalf("Lock: %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if k, _, err := b.Build(ctx, n); err == nil || k != nil || !strings.Contains(err.Error(), "prune") {
		t.Errorf("Build during a prune = %v, %v", k, err)
	}
	release()
	k, hit, err := b.Build(context.Background(), n)
	if err != nil || !hit || k.Key != p.Key {
		t.Errorf("Build after the prune = %+v, %v, %v", k, hit, err)
	}
}

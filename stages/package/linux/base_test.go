package linux

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/cache"
)

// The images of one kernel share the cache's one copy of it, and what
// happens to the user's kernel file afterwards does not reach them.
func TestImagesShareTheStoredKernel(t *testing.T) {
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in := testInput(t)
	userKernel := in.Kernel.Path
	var dirs []string
	for _, app := range []string{"api", "web"} {
		sk, err := storedKernel(context.Background(), store, in.Kernel)
		if err != nil {
			t.Fatal(err)
		}
		if !sk.Immutable || filepath.Dir(sk.Path) != store.Path(kernelKind, in.Kernel.Digest) {
			t.Fatalf("stored kernel %+v, want the immutable copy in %s", sk, store.Path(kernelKind, in.Kernel.Digest))
		}
		if sk.ModulesDir != in.Kernel.ModulesDir || sk.Version != in.Kernel.Version {
			t.Errorf("stored kernel lost its modules or version: %+v", sk)
		}
		i := in
		i.Kernel, i.Config.App = sk, app
		out := t.TempDir()
		img, err := Build(context.Background(), i, out)
		if err != nil {
			t.Fatal(err)
		}
		if img.Digest == "" {
			t.Fatal("no image digest")
		}
		dirs = append(dirs, out)
	}
	a, errA := os.Stat(filepath.Join(dirs[0], KernelFile))
	b, errB := os.Stat(filepath.Join(dirs[1], KernelFile))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if !os.SameFile(a, b) {
		t.Error("the two images hold two copies of one kernel, want one file linked into both")
	}
	if u, err := os.Stat(userKernel); err != nil || os.SameFile(a, u) {
		t.Errorf("the images link the user's own kernel file (%v), which may be rewritten in place", err)
	}

	// The user rebuilds their kernel where it is: the images keep theirs.
	if err := os.WriteFile(userKernel, []byte("kernel rebuilt"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if b, _ := os.ReadFile(filepath.Join(d, KernelFile)); string(b) != "kernel 6.1.0-test" {
			t.Errorf("%s: image kernel %q after the user's file changed", d, b)
		}
	}
}

func TestStoredKernelChangedSinceResolved(t *testing.T) {
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in := testInput(t)
	if err := os.WriteFile(in.Kernel.Path, []byte("another kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = storedKernel(context.Background(), store, in.Kernel)
	if err == nil || !strings.Contains(err.Error(), "changed since it was resolved") {
		t.Fatalf("err %v, want the kernel named as changed", err)
	}
	if _, ok := store.Lookup(kernelKind, in.Kernel.Digest); ok {
		t.Error("a kernel with the wrong digest was stored under the right one")
	}
}

// A kernel that is not the cache's own copy is copied, not linked.
func TestBuildCopiesAMutableKernel(t *testing.T) {
	in := testInput(t)
	out := t.TempDir()
	if _, err := Build(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	a, errA := os.Stat(filepath.Join(out, KernelFile))
	u, errU := os.Stat(in.Kernel.Path)
	if errA != nil || errU != nil {
		t.Fatal(errA, errU)
	}
	if os.SameFile(a, u) {
		t.Error("the image links a kernel file that may be rewritten in place")
	}
}

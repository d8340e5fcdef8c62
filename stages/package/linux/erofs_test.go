package linux

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// erofsTestTree is a tree with what an app bundle holds: files of every
// size around the block size, an executable, symbolic links, nested and
// empty directories, and a directory of more entries than one block holds.
func erofsTestTree(t *testing.T) (*tree, map[string][]byte) {
	t.Helper()
	host := t.TempDir()
	want := map[string][]byte{}
	tr := newTree()
	add := func(p string, content []byte, perm uint32) {
		src := filepath.Join(host, strings.ReplaceAll(p, "/", "_"))
		if err := os.WriteFile(src, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := tr.put(p, &node{kind: kindFile, perm: perm, src: src, from: "test"}, false); err != nil {
			t.Fatal(err)
		}
		want[p] = content
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	for _, n := range []int{0, 1, 100, 4064, 4065, 4095, 4096, 4097, 8192, 8193, 100_000, 1 << 20} {
		add(fmt.Sprintf("app/sizes/f%d", n), random(n), 0o644)
	}
	add("app/main", random(30_000), 0o755)
	add("usr/lib/python3/a/b/c/deep.py", []byte("print('deep')\n"), 0o644)
	for i := 0; i < 400; i++ {
		add(fmt.Sprintf("app/many/%03d-%s", i, strings.Repeat("n", 20)), []byte(fmt.Sprint(i)), 0o644)
	}
	if err := tr.put("etc/hosts", &node{kind: kindFile, perm: 0o644, data: []byte("127.0.0.1 localhost\n"), from: "test"}, false); err != nil {
		t.Fatal(err)
	}
	want["etc/hosts"] = []byte("127.0.0.1 localhost\n")
	for p, target := range map[string]string{"lib64": "usr/lib", "app/link": "sizes/f100", "app/long-link": strings.Repeat("x/", 1000) + "y"} {
		if err := tr.put(p, &node{kind: kindSymlink, target: target, from: "test"}, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"proc", "tmp", "app/empty"} {
		if err := tr.put(d, &node{kind: kindDir, perm: 0o755, from: "test"}, false); err != nil {
			t.Fatal(err)
		}
	}
	return tr, want
}

func TestEROFSImageChecksAndExtracts(t *testing.T) {
	fsck, err := exec.LookPath("fsck.erofs")
	if err != nil {
		t.Skip("fsck.erofs is missing (apt-get install erofs-utils; scripts/install-deps --test installs it)")
	}
	tr, want := erofsTestTree(t)
	var img bytes.Buffer
	if err := tr.writeEROFS(&img, [16]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if img.Len()%erofsBlockSize != 0 {
		t.Errorf("image is %d bytes, not whole blocks", img.Len())
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "root.erofs")
	if err := os.WriteFile(p, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x")
	if b, err := exec.Command(fsck, "--extract="+out, p).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, b)
	}
	for rel, content := range want {
		got, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Errorf("/%s: %v", rel, err)
			continue
		}
		if !bytes.Equal(got, content) {
			t.Errorf("/%s: %d bytes extracted, want %d (same content: %v)", rel, len(got), len(content), bytes.Equal(got, content))
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "app/main")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("app/main: %v %v, want mode 0755", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(out, "app/sizes/f100")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("f100: %v %v, want mode 0644", fi.Mode(), err)
	}
	for link, target := range map[string]string{"lib64": "usr/lib", "app/link": "sizes/f100", "app/long-link": strings.Repeat("x/", 1000) + "y"} {
		if got, err := os.Readlink(filepath.Join(out, link)); err != nil || got != target {
			t.Errorf("/%s -> %q (%v), want -> %s", link, got, err, target)
		}
	}
	ents, err := os.ReadDir(filepath.Join(out, "app/many"))
	if err != nil || len(ents) != 400 {
		t.Errorf("app/many: %d entries (%v), want 400", len(ents), err)
	}
	for _, d := range []string{"proc", "tmp", "app/empty"} {
		if fi, err := os.Stat(filepath.Join(out, d)); err != nil || !fi.IsDir() {
			t.Errorf("/%s is not a directory: %v", d, err)
		}
	}
}

func TestEROFSIsReproducible(t *testing.T) {
	tr, _ := erofsTestTree(t)
	var a, b bytes.Buffer
	if err := tr.writeEROFS(&a, [16]byte{9}); err != nil {
		t.Fatal(err)
	}
	if err := tr.writeEROFS(&b, [16]byte{9}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same tree gave two images")
	}
}

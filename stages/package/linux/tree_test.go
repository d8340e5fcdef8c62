package linux

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestTreeFromHost(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o700))
	must(os.WriteFile(filepath.Join(root, "usr/bin/app"), []byte("ELF"), 0o700))
	must(os.WriteFile(filepath.Join(root, "usr/data.txt"), []byte("data"), 0o600))
	must(os.Symlink("usr/bin/app", filepath.Join(root, "app")))
	must(os.MkdirAll(filepath.Join(root, "a-b"), 0o755))
	must(os.WriteFile(filepath.Join(root, "a-b/x"), nil, 0o644))

	tr := newTree()
	must(tr.addHostTree(root, "bundle"))
	must(tr.put("/a/deep/file", &node{kind: kindFile, perm: 0o644, data: []byte("d")}, false))
	var buf bytes.Buffer
	must(tr.writeCPIO(&buf))
	es, err := readCPIO(buf.Bytes())
	must(err)
	var names []string
	byName := map[string]cpioEntry{}
	for _, e := range es {
		names = append(names, e.Name)
		byName[e.Name] = e
	}
	want := "a a-b a-b/x a/deep a/deep/file app usr usr/bin usr/bin/app usr/data.txt"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("order\n got %s\nwant %s", got, want)
	}
	// Every parent before its children.
	seen := map[string]bool{}
	for _, n := range names {
		if d := filepath.Dir(n); d != "." && !seen[d] {
			t.Errorf("%s before its directory %s", n, d)
		}
		seen[n] = true
	}
	if m := byName["usr/bin/app"].Mode; m != modeFile|0o755 {
		t.Errorf("app mode %o, want exec bits normalized to 0755", m)
	}
	if m := byName["usr/data.txt"].Mode; m != modeFile|0o644 {
		t.Errorf("data mode %o, want 0644", m)
	}
	if m := byName["usr"].Mode; m != modeDir|0o755 {
		t.Errorf("dir mode %o, want 0755", m)
	}
	if e := byName["app"]; e.Mode != modeLink|0o777 || string(e.Data) != "usr/bin/app" {
		t.Errorf("symlink %o %q", e.Mode, e.Data)
	}
}

func TestTreeConflicts(t *testing.T) {
	tr := newTree()
	if err := tr.put("/etc/hosts", &node{kind: kindFile, data: []byte("a"), from: "bundle"}, false); err != nil {
		t.Fatal(err)
	}
	if err := tr.put("/etc/hosts", &node{kind: kindFile, data: []byte("b"), from: "base"}, false); err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("no conflict error: %v", err)
	}
	if err := tr.put("/etc/hosts", &node{kind: kindFile, data: []byte("b"), from: "base"}, true); err != nil {
		t.Errorf("replace: %v", err)
	}
	if err := tr.put("/etc/hosts/x", &node{kind: kindFile, from: "base"}, false); err == nil {
		t.Error("file used as a directory")
	}
	if err := tr.put("/etc", &node{kind: kindDir, perm: 0o755}, false); err != nil {
		t.Errorf("directory twice: %v", err)
	}
	if err := tr.put("/", &node{kind: kindDir}, false); err == nil {
		t.Error("root accepted")
	}
}

func TestTreeRejectsSpecialFiles(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	err := newTree().addHostTree(root, "the app bundle")
	if err == nil || !strings.Contains(err.Error(), "only files, directories and symbolic links") {
		t.Errorf("fifo: %v", err)
	}
}

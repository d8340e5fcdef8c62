package stamp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestKeyCoversTheInvocation(t *testing.T) {
	inv := Invocation{Exe: "/bin/unikfile", Args: []string{"build", "./...", "-j", "2"}, Dir: "/w",
		Environ: []string{"PATH=/bin", "GOFLAGS=-mod=mod", "TERM=xterm"}}
	base := inv.Key()
	if filepath.Dir(Path("/cache", inv)) != "/cache/stamps" {
		t.Fatalf("stamp %s is not in the cache's stamps folder", Path("/cache", inv))
	}
	for name, change := range map[string]func(i *Invocation){
		"the executable": func(i *Invocation) { i.Exe = "/usr/local/bin/unikfile" },
		"an address":     func(i *Invocation) { i.Args = []string{"build", "api", "-j", "2"} },
		"a flag":         func(i *Invocation) { i.Args = []string{"build", "./...", "-j", "1"} },
		"a new flag":     func(i *Invocation) { i.Args = append(slices.Clone(i.Args), "--summary", "text") },
		"argument split": func(i *Invocation) { i.Args = []string{"build", "./... -j", "2"} },
		"dir":            func(i *Invocation) { i.Dir = "/x" },
		"GOFLAGS":        func(i *Invocation) { i.Environ = []string{"PATH=/bin", "GOFLAGS=", "TERM=xterm"} },
		"PATH":           func(i *Invocation) { i.Environ = []string{"PATH=/usr/bin", "GOFLAGS=-mod=mod", "TERM=xterm"} },
		"UNIKFILE_VAR":   func(i *Invocation) { i.Environ = append(slices.Clone(i.Environ), "UNIKFILE_VAR_port=1") },
		"the cache":      func(i *Invocation) { i.Environ = append(slices.Clone(i.Environ), "UNIKFILE_CACHE_DIR=/c") },
	} {
		i := inv
		change(&i)
		if i.Key() == base || Path("/cache", i) == Path("/cache", inv) {
			t.Errorf("a change of %s keeps the key", name)
		}
	}
	i := inv
	i.Environ = []string{"TERM=dumb", "GOFLAGS=-mod=mod", "PATH=/bin", "SSH_AUTH_SOCK=/x"}
	if i.Key() != base {
		t.Error("variables a build does not read (TERM, SSH_AUTH_SOCK), or their order, change the key")
	}
}

// record writes a stamp of paths, as they are now, under key.
func record(t *testing.T, path, key string, paths []string, r Replay) {
	t.Helper()
	entries := map[string]Entry{}
	now := time.Now().UnixNano()
	for _, p := range paths {
		e := Entry{Mode: AbsentMode, Recorded: now}
		if fi, err := os.Stat(p); err == nil {
			e, _ = Meta(fi, 0)
			e.Recorded = now
		}
		entries[p] = e
	}
	data, ok := Encode(key, entries, r)
	if !ok {
		t.Fatal("not encodable")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeOld(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// oldTree writes n files changed outside the racy window and returns
// where their stamp goes and their paths, then one of a file that does
// not exist (a Unikfile, recorded as absent).
func oldTree(t *testing.T, n int) (stamp string, paths []string) {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, "src", "f"+strconv.Itoa(i))
		writeOld(t, p, "x")
		paths = append(paths, p)
	}
	paths = append(paths, filepath.Join(dir, "src", "Unikfile"))
	time.Sleep(RacyWindow + 100*time.Millisecond)
	return filepath.Join(dir, "stamps", "s"), paths
}

// TestLargeStampCheckedWhole: a stamp of many paths (several chunks, on
// every CPU) counts every path, and a change to any one of them, the last
// or the first, is seen; so is a path that appears.
func TestLargeStampCheckedWhole(t *testing.T) {
	const files = 5*chunk + 7
	st, paths := oldTree(t, files)
	absent := paths[files]
	record(t, st, "k", paths, Replay{Stdout: []byte("out")})
	if r, n, ok := Check(st, "k", 0); !ok || n != files+1 || string(r.Stdout) != "out" {
		t.Fatalf("unchanged: ok=%v, %d paths checked, want %d, stdout %q", ok, n, files+1, r.Stdout)
	}
	if _, _, ok := Check(st, "other key", 0); ok {
		t.Error("the stamp holds for another invocation")
	}
	for _, i := range []int{files - 1, 0, files / 2} {
		if err := os.Remove(paths[i]); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := Check(st, "k", 0); ok {
			t.Errorf("the stamp holds with path %d of %d removed", i, files)
		}
		writeOld(t, paths[i], "x")
		time.Sleep(RacyWindow + 100*time.Millisecond)
		record(t, st, "k", paths, Replay{})
		if _, n, ok := Check(st, "k", 0); !ok || n != files+1 {
			t.Fatalf("re-recorded: ok=%v, %d paths checked, want %d", ok, n, files+1)
		}
	}
	writeOld(t, absent, "app {}")
	if _, _, ok := Check(st, "k", 0); ok {
		t.Error("the stamp holds after a path recorded as absent appeared")
	}
}

// TestCheckChangedListsEveryChangedPath: a stamp of this invocation that
// does not hold names every path that changed, in every chunk, removed,
// rewritten or appeared; one that holds, or another invocation's, names
// none.
func TestCheckChangedListsEveryChangedPath(t *testing.T) {
	const files = 3*chunk + 5
	st, paths := oldTree(t, files)
	absent := paths[files]
	record(t, st, "k", paths, Replay{})
	if _, _, changed, ok := CheckChanged(st, "k", 0); !ok || changed != nil {
		t.Fatalf("unchanged: ok=%v, changed %v", ok, changed)
	}
	os.Remove(paths[0])
	writeOld(t, paths[chunk+1], "longer")
	writeOld(t, paths[files-1], "y") // same size, other inode or times
	writeOld(t, absent, "app {}")
	want := []string{paths[0], paths[chunk+1], paths[files-1], absent}
	slices.Sort(want)
	_, _, changed, ok := CheckChanged(st, "k", 0)
	if ok || !slices.Equal(changed, want) {
		t.Errorf("ok=%v, changed %v, want %v", ok, changed, want)
	}
	if _, _, changed, _ := CheckChanged(st, "another invocation", 0); changed != nil {
		t.Errorf("another invocation's stamp names changes: %v", changed)
	}
}

func TestRecentChangeIsNotTrusted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "main.go")
	writeOld(t, p, "x") // ctime is now
	st := filepath.Join(dir, "stamp")
	record(t, st, "k", []string{p}, Replay{})
	if _, _, ok := Check(st, "k", 0); ok {
		t.Error("a stamp recorded within the racy window of an input's change was trusted")
	}
}

func TestCorruptStampIsAMiss(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "stamp")
	for _, data := range []string{"", "unikfile stamp v2\n\"k\"\n\n\n", header + "\n\"k\"\n!!\n", header + "\n\"k\"\nreplay 0 0\n/x\t1\t2\n",
		header + "\n\"k\"\nreplay 9 0\nshort", header + "\n\"k\"\nreplay -1 0\n", header + "\n\"k\"\nreplay 0\n"} {
		os.WriteFile(st, []byte(data), 0o644)
		if _, _, ok := Check(st, "k", 0); ok {
			t.Errorf("stamp %q holds", data)
		}
	}
	if _, _, ok := Check(filepath.Join(dir, "none"), "k", 0); ok {
		t.Error("a missing stamp holds")
	}
	// A line of an absent path holds with its eight fields, and not with
	// one more or one fewer.
	absent := fmt.Sprintf("%s\t0\t0\t0\t0\t0\t%d\t0", filepath.Join(dir, "gone"), AbsentMode)
	for line, want := range map[string]bool{absent: true, absent + "\t0": false, absent[:strings.LastIndex(absent, "\t")]: false} {
		os.WriteFile(st, []byte(header+"\n\"k\"\nreplay 0 0\n"+line+"\n"), 0o644)
		if _, _, ok := Check(st, "k", 0); ok != want {
			t.Errorf("stamp line %q: holds %v, want %v", line, ok, want)
		}
	}
}

func TestReplayPrintsItsOwnDuration(t *testing.T) {
	r := Replay{Stdout: []byte("image\n"), Stderr: []byte("a: up to date\n\nSummary: 1 node(s) in " + Elapsed + ": 0 built\n")}
	var out, errOut bytes.Buffer
	if err := r.Print(&out, &errOut, 234567*time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if out.String() != "image\n" || !strings.Contains(errOut.String(), "in 235µs: 0 built") || strings.Contains(errOut.String(), "\x00") {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestReplayKeepsItsBytes(t *testing.T) {
	st, paths := oldTree(t, 1)
	// Newlines, tabs, a line that looks like a stamp's own, and two
	// duration marks.
	want := Replay{Stdout: []byte("image a\n\timage b\n" + header + "\n"), Stderr: []byte("a\t1\n\nin " + Elapsed + "\nand in " + Elapsed)}
	record(t, st, "k", paths, want)
	got, n, ok := Check(st, "k", 0)
	if !ok || n != 2 {
		t.Fatalf("the stamp does not hold (%v) or checked %d paths, want 2", ok, n)
	}
	if !bytes.Equal(got.Stdout, want.Stdout) || !bytes.Equal(got.Stderr, want.Stderr) {
		t.Errorf("replay came back as %q / %q", got.Stdout, got.Stderr)
	}
	var out, errOut bytes.Buffer
	if err := got.Print(&out, &errOut, 3*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if errOut.String() != "a\t1\n\nin 3ms\nand in 3ms" || out.String() != string(want.Stdout) {
		t.Errorf("printed %q / %q", out.String(), errOut.String())
	}
	if got, ok, err := Paths(st); err != nil || !ok || !slices.Equal(got, slices.Sorted(slices.Values(paths))) {
		t.Errorf("Paths = %q, %v, %v; want %q", got, ok, err, paths)
	}
}

func TestModeIsWhatOsReports(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o640)
	special := filepath.Join(dir, "s")
	os.WriteFile(special, nil, 0o755)
	os.Chmod(special, 0o755|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
	link := filepath.Join(dir, "l")
	os.Symlink("f", link)
	fifo := filepath.Join(dir, "p")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, file, special, link, fifo, sock, "/dev/null"} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if got := fileMode(st.Mode); got != fi.Mode() {
			t.Errorf("%s: mode %v, os says %v", p, got, fi.Mode())
		}
		if want, _ := Meta(fi, 0); metaOf(&st, 0) != want {
			t.Errorf("%s: metadata %+v, from the FileInfo %+v", p, metaOf(&st, 0), want)
		}
	}
}

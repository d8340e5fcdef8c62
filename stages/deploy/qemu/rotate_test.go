package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/stages/deploy"
)

var countLine = regexp.MustCompile(`(?m)^count (\d+)$`)

// counts returns the "count N" lines of text, checking that they run
// without a gap or a repeat; first is the first N.
func counts(t *testing.T, what, text string) (first, last int) {
	t.Helper()
	m := countLine.FindAllStringSubmatch(text, -1)
	if len(m) == 0 {
		t.Fatalf("%s: no count lines", what)
	}
	first, _ = strconv.Atoi(m[0][1])
	prev := first - 1
	for _, l := range m {
		n, _ := strconv.Atoi(l[1])
		if n != prev+1 {
			t.Fatalf("%s: count %d follows %d: lines lost or repeated", what, n, prev)
		}
		prev = n
	}
	return first, prev
}

// A guest that prints as fast as its console takes: the console rotates
// (QEMU keeps running, nothing is copied), its files stay bounded, logs -f
// reads across every rotation without losing or repeating a line, and
// logs reads the two kept generations.
func TestIntegrationQEMUConsoleRotates(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	img, imgDir := b.image(t, "count", "testmode=count")
	p := NewProvider(deploy.Env{StateDir: dir})
	p.ConsoleMax = 64 << 10
	spec := testSpec(t, dir, testTarget(t), img, imgDir)
	inst, err := p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background(), inst) })
	c, _ := ConfigOf(inst)

	var followed testenv.SyncBuffer
	fdone := make(chan error, 1)
	go func() { fdone <- p.Logs(context.Background(), inst, true, &followed) }()
	// Another command looking at the instance (ps) rotates it too.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			again := *inst
			_ = p.Refresh(context.Background(), &again)
		}
	}()
	rotations, largest := 0, int64(0)
	var lastIno uint64
	deadline := time.Now().Add(3 * time.Minute)
	for rotations < 6 && time.Now().Before(deadline) {
		if fi, err := os.Stat(c.Console); err == nil {
			if ino := fileIno(fi); ino != lastIno {
				if lastIno != 0 {
					rotations++
				}
				lastIno = ino
			}
			largest = max(largest, fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if rotations < 6 {
		t.Fatalf("the console rotated %d times in 3 minutes (largest file %d bytes)", rotations, largest)
	}
	if err := p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fdone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end with the instance")
	}
	first, last := counts(t, "logs -f", followed.String())
	if first != 0 {
		t.Errorf("logs -f started at count %d, want 0", first)
	}
	// Bounded: each generation holds about ConsoleMax, plus what came in
	// before a command noticed.
	for _, f := range []string{c.Console, rotatedPath(c.Console)} {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 4*p.ConsoleMax {
			t.Errorf("%s: %v, size %d; want at most %d", f, err, fi.Size(), 4*p.ConsoleMax)
		}
	}
	if head, err := os.ReadFile(headPath(c.Console)); err != nil || !bytes.Contains(head, []byte("testinit: started")) {
		t.Errorf("the console's head was not kept: %v", err)
	}
	var all bytes.Buffer
	if err := p.Logs(context.Background(), inst, false, &all); err != nil {
		t.Fatal(err)
	}
	kfirst, klast := counts(t, "logs", all.String())
	if klast != last || kfirst == 0 {
		t.Errorf("logs after the rotations has counts %d..%d; want the end, %d, and not the start", kfirst, klast, last)
	}
	t.Logf("%d rotations, %d lines followed, logs keeps %d..%d (%d bytes), largest file %d", rotations, last+1, kfirst, klast, all.Len(), largest)
}

// Two rotations between two reads: the generation between them is read
// too, so that logs -f loses nothing of a guest that prints fast.
func TestConsoleReaderReadsAGenerationRotatedAwayUnseen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	if err := os.WriteFile(path, []byte("count 1\ncount 2\ncou"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, older, err := openConsole(path, true)
	if err != nil || older != nil {
		t.Fatalf("open: %v, older %v", err, older)
	}
	defer r.close()
	var out bytes.Buffer
	if err := r.copyTo(&out); err != nil {
		t.Fatal(err)
	}
	appendTo := func(p, s string) {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	rotate := func() {
		if err := os.Rename(path, rotatedPath(path)); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(path, "nt 3\n") // QEMU ends the first generation
	rotate()
	appendTo(path, "count 4\ncount 5\ncount")
	rotate()
	appendTo(path, " 6\ncount 7\n")
	if err := r.copyTo(&out); err != nil {
		t.Fatal(err)
	}
	first, last := counts(t, "console", out.String())
	if first != 1 || last != 7 {
		t.Errorf("read counts %d..%d, want 1..7:\n%s", first, last, out.String())
	}
}

package state

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestCrashDuringWrites kills a writing process with SIGKILL and checks that
// the database opens afterwards and holds every write the writer reported as
// committed.
func TestCrashDuringWrites(t *testing.T) {
	if dir := os.Getenv("STATE_TEST_WRITER_DIR"); dir != "" {
		s, err := Open(dir)
		if err != nil {
			os.Exit(2)
		}
		for n := 1; ; n++ {
			if err := s.Put(newInstance("crash", time.Now())); err != nil {
				os.Exit(3)
			}
			os.Stdout.WriteString(strconv.Itoa(n) + "\n")
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringWrites$")
	cmd.Env = append(os.Environ(), "STATE_TEST_WRITER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	committed := 0
	for sc.Scan() {
		committed, _ = strconv.Atoi(sc.Text())
		if committed >= 30 {
			break
		}
	}
	_ = cmd.Process.Kill()
	for sc.Scan() { // writes reported before the kill landed
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			committed = n
		}
	}
	_ = cmd.Wait()
	if committed < 30 {
		t.Fatalf("writer reported only %d writes", committed)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	l, err := s.List(Filter{App: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l) < committed {
		t.Errorf("%d instances after the crash, the writer had committed %d", len(l), committed)
	}
	if err := s.Put(newInstance("after", time.Now())); err != nil {
		t.Errorf("write after the crash: %v", err)
	}
}

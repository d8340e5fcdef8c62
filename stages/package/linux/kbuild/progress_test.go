package kbuild

import (
	"strings"
	"testing"
	"time"
)

func TestProgressCountsStepsAndSpeaks(t *testing.T) {
	var said []string
	p := newProgress(func(s string) { said = append(said, s) }, true, 10)
	now := p.start
	p.now = func() time.Time { return now }
	out := "make[1]: Entering directory '/x'\n  SYNC    include/config/auto.conf\n  CC      kernel/fork.o\n  HOSTCC  scripts/basic/fixdep\nwarning: something\n  LD      vmlinux"
	p.Write([]byte(out[:20]))
	p.Write([]byte(out[20:]))
	if p.steps != 3 {
		t.Errorf("%d steps before the last line, want 3", p.steps)
	}
	p.flush()
	if p.steps != 4 {
		t.Errorf("%d steps, want 4", p.steps)
	}
	if len(said) != 0 {
		t.Errorf("spoke before %s: %v", progressEvery, said)
	}
	now = now.Add(progressEvery)
	p.Write([]byte("  CC      mm/slub.o\n"))
	if len(said) != 1 || !strings.Contains(said[0], "5 of about 10 steps (50%)") {
		t.Errorf("said %v", said)
	}
	inc := newProgress(func(s string) { said = append(said, s) }, false, 10)
	if m := inc.message(inc.start.Add(3 * time.Second)); m != "compiling the kernel: 0 steps, 3s" {
		t.Errorf("incremental message %q", m)
	}
}

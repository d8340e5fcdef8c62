package kbuild

import (
	"fmt"
	"regexp"
	"sync"
	"time"
)

// progressEvery is how often a build in progress says how far it is.
const progressEvery = 15 * time.Second

// stepLine matches the lines Kbuild prints per step ("  CC      mm/slub.o").
var stepLine = regexp.MustCompile(`^  [A-Z][A-Z0-9_-]* +\S`)

// progress counts make's steps from its output and says, every
// progressEvery, how many were done (with a percentage of the estimate
// for a cold build).
type progress struct {
	say      func(string)
	cold     bool
	estimate int
	start    time.Time
	every    time.Duration
	now      func() time.Time

	mu    sync.Mutex
	last  time.Time
	steps int
	line  []byte
}

func newProgress(say func(string), cold bool, estimate int) *progress {
	now := time.Now
	t := now()
	return &progress{say: say, cold: cold, estimate: estimate, start: t, last: t, every: progressEvery, now: now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range b {
		if c != '\n' {
			if len(p.line) < 256 {
				p.line = append(p.line, c)
			}
			continue
		}
		p.endLine()
	}
	return len(b), nil
}

func (p *progress) endLine() {
	if stepLine.Match(p.line) {
		p.steps++
	}
	p.line = p.line[:0]
	if t := p.now(); t.Sub(p.last) >= p.every {
		p.last = t
		if p.say != nil {
			p.say(p.message(t))
		}
	}
}

// flush counts a last line without a newline.
func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.line) > 0 {
		if stepLine.Match(p.line) {
			p.steps++
		}
		p.line = p.line[:0]
	}
}

func (p *progress) message(t time.Time) string {
	took := t.Sub(p.start).Round(time.Second)
	if p.cold && p.estimate > 0 {
		pct := min(99, 100*p.steps/p.estimate)
		return fmt.Sprintf("compiling the kernel: %d of about %d steps (%d%%), %s", p.steps, p.estimate, pct, took)
	}
	return fmt.Sprintf("compiling the kernel: %d steps, %s", p.steps, took)
}

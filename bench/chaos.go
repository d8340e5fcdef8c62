package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/cache"
)

// Long runs that a user never sees fail in a test: kill -9 of `unikfile
// up` at random moments (-suite kill), and a watch fed hundreds of edits
// (-suite soak). Neither is a speed measurement: each prints what it
// checked and fails at the first thing that is wrong.

var (
	kills     = flag.Int("kills", 20, "kill -9 moments of the kill suite")
	soakEdits = flag.Int("soak-edits", 200, "edits of the soak suite")
	seed      = flag.Uint64("seed", 0, "random seed of the kill suite (0: from the clock)")
)

// chaosEnv is a hello project with its own cache and state, and a
// reference cache where the same sources are built undisturbed.
type chaosEnv struct {
	*env
	ref string
}

func newChaosEnv(name string) (*chaosEnv, func(), error) {
	nothing := func() {}
	root, err := repoRoot()
	if err != nil {
		return nil, nothing, err
	}
	tmp, err := os.MkdirTemp("", "uf-"+name+"-")
	if err != nil {
		return nil, nothing, err
	}
	e := &env{tmp: tmp, bin: filepath.Join(tmp, "unikfile"), project: filepath.Join(tmp, "hello"),
		cache: filepath.Join(tmp, "cache"), state: filepath.Join(tmp, "state"), port: freePort()}
	cleanup := func() {
		_ = e.unikfile("down")
		os.RemoveAll(tmp)
	}
	if e.kernel, err = findKernel(); err != nil {
		return nil, cleanup, err
	}
	if err := buildUnikfile(root, e.bin); err != nil {
		return nil, cleanup, err
	}
	if err := copyDir(filepath.Join(root, "examples", "hello"), e.project); err != nil {
		return nil, cleanup, err
	}
	return &chaosEnv{env: e, ref: filepath.Join(tmp, "ref-cache")}, cleanup, nil
}

func (e *chaosEnv) command(ctx context.Context, cache string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = e.project
	cmd.Env = append(os.Environ(), "UNIKFILE_CACHE_DIR="+cache, "UNIKFILE_STATE_DIR="+e.state,
		"UNIKFILE_KERNEL="+e.kernel, "UNIKFILE_VAR_port="+strconv.Itoa(e.port), "TERM=dumb")
	return cmd
}

const helloText = "Hello from a unikernel!"

// setMessage makes the app answer msg (saved by rename, as editors do).
func (e *env) setMessage(src, msg string) error {
	tmp := filepath.Join(e.project, ".main.go.new")
	if err := os.WriteFile(tmp, []byte(strings.Replace(src, helloText, msg, 1)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(e.project, "main.go"))
}

type psEntry struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	ImageDigest string `json:"image_digest"`
	RunDir      string `json:"run_dir"`
}

func (e *chaosEnv) ps() ([]psEntry, error) {
	out, err := e.command(context.Background(), e.cache, "ps", "--json").Output()
	if err != nil {
		return nil, fmt.Errorf("ps: %w", err)
	}
	var insts []psEntry
	return insts, json.Unmarshal(out, &insts)
}

// qemus counts the QEMU processes of the project's state directory.
func (e *env) qemus() int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "qemu-system") && strings.Contains(string(b), e.state) {
			n++
		}
	}
	return n
}

// runKill kills `unikfile up` or `unikfile build` with SIGKILL at random
// moments of their work, each time after an edit, and checks that the next
// `up` succeeds and that everything is consistent: it serves the edit from
// an image whose digest equals an undisturbed build's (so no damaged cache
// entry was trusted), every entry in the cache verifies, and there is one
// instance record, one run directory and one QEMU.
func runKill() error {
	e, cleanup, err := newChaosEnv("kill")
	defer cleanup()
	if err != nil {
		return err
	}
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	src, err := os.ReadFile(filepath.Join(e.project, "main.go"))
	if err != nil {
		return err
	}
	fmt.Printf("kill -9 of unikfile up or build at %d random moments (seed %d), %s\n", *kills, s, loadAverage())
	if out, err := e.command(context.Background(), e.cache, "up").CombinedOutput(); err != nil {
		return fmt.Errorf("first up: %v\n%s", err, out)
	}
	// An up and a build after an edit (compile, package, and for up the
	// boot and swap) are what the moments of each are spread over.
	spans := map[string]time.Duration{}
	for _, verb := range []string{"up", "build"} {
		if err := e.setMessage(string(src), "Chaos warm-up of "+verb); err != nil {
			return err
		}
		start := time.Now()
		if out, err := e.command(context.Background(), e.cache, verb).CombinedOutput(); err != nil {
			return fmt.Errorf("%s after an edit: %v\n%s", verb, err, out)
		}
		spans[verb] = time.Since(start)
	}
	fmt.Printf("after an edit an up took %s, a build %s; the moments of each are spread over 0-90%% of that\n", round(spans["up"]), round(spans["build"]))
	stageLine := regexp.MustCompile(`^(compile|package|deploy|build guest init)[^:]*: `)
	ended := map[string]int{}
	// A command that ends before its moment is not a kill: it goes on
	// until kills commands were killed at work (or twice as many tries).
	killed := 0
	for i := 1; killed < *kills && i <= 2**kills; i++ {
		msg := fmt.Sprintf("Chaos edit number %03d", i)
		if err := e.setMessage(string(src), msg); err != nil {
			return err
		}
		verb := "up"
		if rng.IntN(3) == 0 {
			verb = "build"
		}
		at := time.Duration(rng.Int64N(int64(spans[verb] * 9 / 10)))
		cmd := e.command(context.Background(), e.cache, verb)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			return err
		}
		lines := make(chan string, 256)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		timer := time.NewTimer(at)
		last, done := "(nothing yet)", false
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					done = true
					break wait
				}
				if stageLine.MatchString(l) {
					last = l
					if len(last) > 60 {
						last = last[:57] + "..."
					}
				}
			case <-timer.C:
				break wait
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		go func() {
			for range lines {
			}
		}()
		_ = cmd.Wait()
		what := verb + " killed during " + strconv.Quote(last)
		if done {
			what = verb + " ended before the kill"
			ended[verb]++
		} else {
			killed++
		}
		out, err := e.command(context.Background(), e.cache, "up").CombinedOutput()
		if err != nil {
			return fmt.Errorf("moment %d (%s after the start, %s): the next up failed: %v\n%s", i, round(at), what, err, out)
		}
		digest, err := e.consistent(msg)
		if err != nil {
			return fmt.Errorf("moment %d (%s after the start, %s): %w", i, round(at), what, err)
		}
		fmt.Printf("  %2d: %-8s %s; next up ok, consistent, image %s = undisturbed build\n", i, round(at), what, digest[:12])
	}
	left, _ := os.ReadDir(filepath.Join(e.cache, "tmp"))
	fmt.Printf("kill suite: %d commands killed at work (%d ups and %d builds ended before their moment), every recovery good; %d temporary folders left in the cache\n",
		killed, ended["up"], ended["build"], len(left))
	if killed < *kills {
		return fmt.Errorf("only %d of %d tries were killed at work", killed, *kills)
	}
	if len(left) != 0 {
		return errors.New("the cache's tmp folder is not empty after the last up")
	}
	return nil
}

// consistent checks what a user would after an up: one running instance
// that serves msg from the image an undisturbed build of the same source
// makes, one QEMU, one run directory, and a cache whose every entry
// verifies. It returns the image's digest.
func (e *chaosEnv) consistent(msg string) (string, error) {
	insts, err := e.ps()
	if err != nil {
		return "", err
	}
	if len(insts) != 1 || insts[0].State != "running" {
		return "", fmt.Errorf("after the next up, ps shows %+v; want one running instance", insts)
	}
	if n := e.qemus(); n != 1 {
		return "", fmt.Errorf("%d QEMU processes after the next up, want 1", n)
	}
	if insts[0].RunDir != "" {
		des, err := os.ReadDir(filepath.Dir(insts[0].RunDir))
		if err != nil {
			return "", err
		}
		if len(des) != 1 || des[0].Name() != insts[0].ID {
			var names []string
			for _, d := range des {
				names = append(names, d.Name())
			}
			return "", fmt.Errorf("run directories %v beside the one instance %s", names, insts[0].ID)
		}
	}
	if err := waitBody(e.port, msg, time.Minute); err != nil {
		return "", err
	}
	store, err := cache.Open(e.cache)
	if err != nil {
		return "", err
	}
	kinds, _ := os.ReadDir(filepath.Join(e.cache, "objects"))
	for _, k := range kinds {
		keys, _ := os.ReadDir(filepath.Join(e.cache, "objects", k.Name()))
		for _, key := range keys {
			if _, ok := store.Verify(k.Name(), key.Name()); !ok {
				return "", fmt.Errorf("cache entry %s/%s does not verify: a kill left a damaged entry in the store", k.Name(), key.Name())
			}
		}
	}
	ref, err := e.command(context.Background(), e.ref, "build", "--json").Output()
	if err != nil {
		return "", fmt.Errorf("reference build: %w", err)
	}
	var imgs []struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal(ref, &imgs); err != nil || len(imgs) != 1 {
		return "", fmt.Errorf("reference build: %v\n%s", err, ref)
	}
	if imgs[0].Digest != insts[0].ImageDigest {
		return "", fmt.Errorf("the recovered instance runs image %.12s, an undisturbed build of the same source gives %.12s: a damaged cache entry was used",
			insts[0].ImageDigest, imgs[0].Digest)
	}
	return imgs[0].Digest, nil
}

// counts is what a watch process holds (its SIGUSR1 line) and the QEMUs
// of its state directory.
type counts struct {
	goroutines, files, children, qemus int
}

var countsLine = regexp.MustCompile(`^unikfile: pid \d+: goroutines (\d+), open files (\d+), children (\d+)$`)

// runSoak feeds a watch soakEdits edits and checks that after the last
// one it holds what it held after the first: QEMU processes, open file
// descriptors, goroutines and child processes.
func runSoak() (err error) {
	e, cleanup, err := newChaosEnv("soak")
	defer cleanup()
	if err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(e.project, "main.go"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := e.command(ctx, e.cache, "watch", "--drain", "1s")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cancel(); cmd.Wait() }()
	// Room for every line of a long soak: a reader that blocked would
	// block the watch's own writes to its standard error.
	lines := make(chan string, 1<<16)
	var log lastLines
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.add(sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()
	// A failure keeps what the watch said last and its goroutines
	// (SIGQUIT makes Go print them) in a file that outlives the run.
	defer func() {
		if err == nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(3 * time.Second)
		f := filepath.Join(os.TempDir(), fmt.Sprintf("unikfile-soak-failure-%d.log", time.Now().Unix()))
		if os.WriteFile(f, []byte(strings.Join(log.lines(), "\n")+"\n"), 0o644) == nil {
			err = fmt.Errorf("%w (the watch's last output and goroutines: %s)", err, f)
		}
	}()
	waitLine := func(match func(string) bool, what string) (string, error) {
		timeout := time.After(10 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return "", fmt.Errorf("watch ended while waiting for %s", what)
				}
				if strings.Contains(l, "boot failed") || strings.Contains(l, "build failed") {
					return "", fmt.Errorf("watch: %s", l)
				}
				if match(l) {
					return l, nil
				}
			case <-timeout:
				return "", fmt.Errorf("watch: no %s within 10 minutes", what)
			}
		}
	}
	prefix := func(p string) func(string) bool { return func(l string) bool { return strings.HasPrefix(l, p) } }
	sample := func() (counts, error) {
		// A quiet moment: the old VM's stop and its goroutines are done.
		time.Sleep(2 * time.Second)
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			return counts{}, err
		}
		l, err := waitLine(countsLine.MatchString, "the counts line")
		if err != nil {
			return counts{}, err
		}
		m := countsLine.FindStringSubmatch(l)
		var c counts
		c.goroutines, _ = strconv.Atoi(m[1])
		c.files, _ = strconv.Atoi(m[2])
		c.children, _ = strconv.Atoi(m[3])
		c.qemus = e.qemus()
		return c, nil
	}
	fmt.Printf("watch soak: %d edits of examples/hello, %s\n", *soakEdits, loadAverage())
	start := time.Now()
	if _, err := waitLine(prefix("hello: swapped"), "the first swap"); err != nil {
		return err
	}
	var first counts
	for i := 1; i <= *soakEdits; i++ {
		msg := fmt.Sprintf("Soak edit number %03d", i)
		if err := e.setMessage(string(src), msg); err != nil {
			return err
		}
		if err := waitBody(e.port, msg, 10*time.Minute); err != nil {
			return fmt.Errorf("edit %d: %w", i, err)
		}
		if _, err := waitLine(prefix("hello: stopped"), "the old VM's stop"); err != nil {
			return fmt.Errorf("edit %d: %w", i, err)
		}
		if i == 1 || i == *soakEdits || i%25 == 0 {
			c, err := sample()
			if err != nil {
				return err
			}
			fmt.Printf("  after edit %3d (%s): QEMU %d, open files %d, goroutines %d, children %d\n", i, round(time.Since(start)), c.qemus, c.files, c.goroutines, c.children)
			if i == 1 {
				first = c
			} else if i == *soakEdits && c != first {
				return fmt.Errorf("after %d edits the watch holds %+v, after the first %+v", i, c, first)
			}
		}
	}
	fmt.Printf("watch soak: %d edits in %s; after the last edit the watch holds what it held after the first (%s)\n", *soakEdits, round(time.Since(start)), loadAverage())
	return nil
}

// loadAverage is the machine's load, for the record.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	return "load average " + strings.Join(f[:3], " ")
}

// lastLines keeps the last lines written to it (a watch's standard error and,
// after SIGQUIT, its goroutine dump).
type lastLines struct {
	mu sync.Mutex
	l  []string
}

func (t *lastLines) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.l = append(t.l, line)
	if len(t.l) > 2000 {
		t.l = t.l[len(t.l)-1000:]
	}
}

func (t *lastLines) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.l)
}

package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	edits     = flag.Int("edits", 5, "edits measured through unikfile watch (and as many floor runs)")
	watchOnly = flag.Bool("watch-only", false, "measure only edit-to-new-version under unikfile watch")
)

// benchWatch measures edit-to-new-version: from writing main.go to the
// first HTTP response carrying the new text, through `unikfile watch`,
// against the floor measured in the same run for a change of the same
// size: an incremental `go build` of the app plus a plain QEMU boot of the
// image watch built, to its first response.
func benchWatch(e *env) error {
	if e.cache == "" {
		e.cache = filepath.Join(e.tmp, "cache-watch")
	}
	floorSrc := filepath.Join(e.tmp, "floor-src")
	if err := copyDir(e.project, floorSrc); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "watch")
	cmd.Dir = e.project
	cmd.Env = append(e.environ(), "UNIKFILE_VAR_port="+strconv.Itoa(e.port))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cancel(); cmd.Wait() }()
	lines := make(chan string, 1<<16) // a reader that blocked would block the watch
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	waitLine := func(prefix string) error {
		timeout := time.After(5 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return fmt.Errorf("unikfile watch ended:\n%s", strings.Join(seen, "\n"))
				}
				seen = append(seen, l)
				if strings.HasPrefix(l, prefix) {
					return nil
				}
				if strings.Contains(l, "failed") {
					return fmt.Errorf("unikfile watch: %s\n%s", l, strings.Join(seen, "\n"))
				}
			case <-timeout:
				return fmt.Errorf("unikfile watch: no %q line in 5 minutes:\n%s", prefix, strings.Join(seen, "\n"))
			}
		}
	}
	if err := waitLine("hello: swapped"); err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(e.project, "main.go"))
	if err != nil {
		return err
	}
	const orig = "Hello from a unikernel!"
	if !strings.Contains(string(src), orig) {
		return fmt.Errorf("examples/hello/main.go no longer says %q; update bench/watch.go", orig)
	}
	var watched, floor, floorBuild, floorBoot []time.Duration
	for i := 0; i < *edits; i++ {
		// The floor's build: a change of the same size, never built before,
		// in a copy of the project (an edit here would wake the watch).
		msg := fmt.Sprintf("Floor edit number %03d", i)
		if err := os.WriteFile(filepath.Join(floorSrc, "main.go"), []byte(strings.Replace(string(src), orig, msg, 1)), 0o644); err != nil {
			return err
		}
		b, err := timeIt(func() error {
			args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=", "-o", filepath.Join(e.tmp, "floor-app"), "."}
			cgo := "CGO_ENABLED=0"
			if e.base == "osv" { // OSv runs Go as an externally linked PIE
				args = []string{"build", "-trimpath", "-buildvcs=false", "-buildmode=pie", "-ldflags=-buildid= -linkmode=external", "-o", filepath.Join(e.tmp, "floor-app"), "."}
				cgo = "CGO_ENABLED=1"
			}
			c := exec.Command("go", args...)
			c.Dir = floorSrc
			c.Env = append(os.Environ(), cgo, "GOOS=linux", "GOARCH=amd64")
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("go build: %v\n%s", err, out)
			}
			return nil
		})
		if err != nil {
			return err
		}

		// The edit under watch.
		msg = fmt.Sprintf("Watch edit number %03d", i)
		tmp := filepath.Join(e.project, ".main.go.new")
		if err := os.WriteFile(tmp, []byte(strings.Replace(string(src), orig, msg, 1)), 0o644); err != nil {
			return err
		}
		start := time.Now()
		if err := os.Rename(tmp, filepath.Join(e.project, "main.go")); err != nil {
			return err
		}
		if err := waitBody(e.port, msg, 5*time.Minute); err != nil {
			return fmt.Errorf("%w\n%s", err, strings.Join(seen, "\n"))
		}
		watched = append(watched, time.Since(start))
		if err := waitLine("hello: swapped"); err != nil {
			return err
		}
		// "... (T since the build started, boot B); stopping OLD"
		swap := seen[len(seen)-1]
		swap = swap[strings.LastIndex(swap, "(")+1:]
		swap = "(watch: " + swap[:strings.Index(swap, ")")] + ")"
		if err := waitLine("hello: stopped"); err != nil { // the old VM is gone: a quiet machine again
			return err
		}

		// The floor's boot: the image watch built, with a plain command line.
		imageDir, err := e.imageDir()
		if err != nil {
			return err
		}
		d, err := plainQEMU(e, imageDir)
		if err != nil {
			return err
		}
		floorBuild, floorBoot = append(floorBuild, b), append(floorBoot, d)
		floor = append(floor, b+d)
		fmt.Printf("  edit %d: watch %s %s; floor: go build %s + boot %s\n", i+1, round(watched[i]), swap, round(b), round(d))
	}
	fmt.Printf("edit to new version (%d edits): go build %s + boot %s on the floor side (medians)\n", *edits, round(median(floorBuild)), round(median(floorBoot)))
	report("edit to new version: unikfile watch", median(watched), "go build + plain qemu boot", median(floor))
	report("  same, fastest of each side", minimum(watched), "go build + plain qemu boot", minimum(floor))
	return nil
}

// waitBody polls until the app's answer contains want, 20 times a second:
// the old version answers the polls until the swap, and under TCG a faster
// poll would slow the new VM's boot by keeping the old one busy.
//
// Each request may take 50 ms, so that a new version is seen within a
// poll or two; one that times out doubles that (up to 2 s), so that a
// machine too loaded to answer within 50 ms is still heard.
func waitBody(port int, want string, limit time.Duration) error {
	timeout := 50 * time.Millisecond
	deadline := time.Now().Add(limit)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		switch {
		case err == nil:
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return nil
			}
			last = fmt.Sprintf("last answer %q", strings.TrimSpace(string(b)))
		case os.IsTimeout(err):
			timeout = min(2*timeout, 2*time.Second)
			last = err.Error()
		default:
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer with %q on port %d within %s (%s)", want, port, limit, last)
}

// Package run runs external programs (go, qemu-img, apt-get, ...) the one way
// the project does: the full command line is recorded, stderr is captured,
// its last lines go into the error, and cancellation of the context stops the
// whole process group, SIGTERM first and SIGKILL after a grace period.
//
// It must not know about any particular program.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Grace is how long a cancelled process gets between SIGTERM and SIGKILL.
const Grace = 3 * time.Second

// Cmd describes one run of a program.
type Cmd struct {
	Path string   // program name or path; looked up in PATH
	Args []string // arguments, without the program name
	Dir  string
	Env  []string // full environment; nil means the current one
	// Stdin is the program's standard input; nil is empty.
	Stdin io.Reader
	// Stdout receives standard output; nil keeps it in Result.Stdout.
	Stdout io.Writer
	// Stderr also receives standard error as it is written, if set.
	Stderr io.Writer
	// Hint is appended to a "not found" error: how to install the program.
	Hint string
}

// Result is what a finished run produced.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// Error is returned when a program fails; it carries the command line and
// the tail of its standard error.
type Error struct {
	CmdLine  string
	ExitCode int // -1 when killed by a signal or not started
	Tail     string
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.CmdLine, e.Err)
	if e.Tail != "" {
		b.WriteString("\n")
		b.WriteString(e.Tail)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// NotFoundError says a program is not installed.
type NotFoundError struct {
	Program string
	Hint    string
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s not found in PATH", e.Program)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Look finds a program, returning a NotFoundError with hint when it is missing.
func Look(program, hint string) (string, error) {
	p, err := exec.LookPath(program)
	if err != nil {
		return "", &NotFoundError{Program: program, Hint: hint}
	}
	return p, nil
}

// CommandLine renders a command line for messages, quoting where needed.
func CommandLine(path string, args []string) string {
	parts := make([]string, 0, len(args)+1)
	for _, a := range append([]string{path}, args...) {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// Command prepares an exec.Cmd in its own process group whose cancellation
// sends SIGTERM to the group and SIGKILL after Grace, and which is killed
// when unikfile dies.
func Command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	// Pdeathsig: a compiler must not outlive a unikfile killed with -9 and
	// go on writing into a folder that a later run has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = Grace
	return cmd
}

// Run runs c to completion.
func Run(ctx context.Context, c Cmd) (*Result, error) {
	path, err := Look(c.Path, c.Hint)
	if err != nil {
		return nil, err
	}
	cmd := Command(ctx, path, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	cmd.Stdin = c.Stdin
	var stdout, stderr bytes.Buffer
	out, errw := c.Stdout, c.Stderr
	_, outFile := out.(*os.File)
	if out != nil && errw != nil && !outFile {
		// exec copies each stream that is not a file on a goroutine of its
		// own, and callers often pass one writer (a log, a buffer) for both.
		// A file stays a file: the child writes to it directly.
		var mu sync.Mutex
		out, errw = &lockedWriter{mu: &mu, w: out}, &lockedWriter{mu: &mu, w: errw}
	}
	cmd.Stdout = &stdout
	if out != nil {
		cmd.Stdout = out
	}
	cmd.Stderr = &stderr
	if errw != nil {
		cmd.Stderr = io.MultiWriter(&stderr, errw)
	}
	err = cmd.Run()
	// The group may hold children that outlived the leader; stop them too.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	res := &Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return res, &Error{CmdLine: CommandLine(c.Path, c.Args), ExitCode: code, Tail: Tail(stderr.Bytes(), 20), Err: err}
	}
	return res, nil
}

// Tail returns the last n lines of b, trimmed.
func Tail(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Environ returns the current environment with overrides applied (KEY=value).
func Environ(overrides ...string) []string {
	env := os.Environ()
	for _, o := range overrides {
		k, _, _ := strings.Cut(o, "=")
		out := env[:0:0]
		for _, e := range env {
			if !strings.HasPrefix(e, k+"=") {
				out = append(out, e)
			}
		}
		env = append(out, o)
	}
	return env
}

// Getenv is the value of key in environ (KEY=value entries), the last one
// winning as it does for a process; "" when it is not there.
func Getenv(environ []string, key string) string {
	v := ""
	for _, e := range environ {
		if rest, ok := strings.CutPrefix(e, key+"="); ok {
			v = rest
		}
	}
	return v
}

// lockedWriter serialises the writes of a command's two streams.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

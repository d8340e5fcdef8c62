package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	// First of all: a no-op build is answered from its stamp before the
	// rest of the binary initialises (the package says why).
	_ "github.com/unikfile/unikfile/cmd/unikfile/internal/noop"
	"github.com/unikfile/unikfile/internal/profile"
	"github.com/unikfile/unikfile/lang"
)

// Exit codes.
const (
	exitOK       = 0
	exitUser     = 1 // bad Unikfile, missing tool, failed build or boot: the user can act
	exitInternal = 2 // a bug in unikfile
	// exitInterrupted is the shells' code for a command ended by SIGINT.
	exitInterrupted = 130
)

func main() {
	dumpCountsOnSignal(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	go func() {
		// After the first signal unikfile winds down (stopping what it
		// started, which may wait for an app to shut down); a second one
		// gets the default action and ends it at once. What it leaves
		// behind is recorded, and the next `up` or `down` cleans it up.
		<-ctx.Done()
		stop()
		fmt.Fprintln(os.Stderr, "stopping; interrupt again to quit at once")
	}()
	stopProfile := profile.Start() // UNIKFILE_PROFILE=DIR: Go's profiles of this process
	code := execute(ctx, os.Args[1:])
	stopProfile()
	os.Exit(code)
}

func execute(ctx context.Context, args []string) int {
	given := append([]string{}, args...)
	// Go-style single-dash long flags people type from habit (fmt -check).
	for i, a := range args {
		if a == "-check" {
			args[i] = "--check"
		}
	}
	cli := newCLI()
	cli.args = given
	out := &countingWriter{w: cli.stdout}
	cli.stdout = out
	root := cli.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	// A script that asked for JSON gets a JSON document whatever failed,
	// even before anything was loaded (a missing Unikfile, a bad --var).
	if out.n == 0 && wantsJSON(cmd) {
		_ = writeJSON(out, struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}{err.Error(), code})
	}
	var reported *reportedError
	var st *statusError
	if !errors.As(err, &reported) && !errors.As(err, &st) {
		fmt.Fprintf(os.Stderr, "Error: %s\n", lang.VisibleLines(err.Error()))
	}
	return code
}

// exitCode is the exit status that err means (see the constants).
func exitCode(err error) int {
	var st *statusError
	if errors.As(err, &st) {
		return st.code
	}
	var intr *interruptedError
	if errors.As(err, &intr) {
		return exitInterrupted
	}
	if isInternal(err) {
		return exitInternal
	}
	return exitUser
}

// wantsJSON says whether cmd was asked for JSON on stdout (--json, or
// --summary json).
func wantsJSON(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	if f := cmd.Flags().Lookup("json"); f != nil && f.Value.String() == "true" {
		return true
	}
	f := cmd.Flags().Lookup("summary")
	return f != nil && f.Value.String() == "json"
}

// countingWriter counts what was written to stdout.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

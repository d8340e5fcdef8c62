package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/unikfile/unikfile/internal/profile"
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
	// Go-style single-dash long flags people type from habit (fmt -check).
	for i, a := range args {
		if a == "-check" {
			args[i] = "--check"
		}
	}
	cli := newCLI()
	root := cli.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var st *statusError
	if errors.As(err, &st) {
		return st.code
	}
	var reported *reportedError
	if !errors.As(err, &reported) {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
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

// Package profile writes Go's profiles of one unikfile process, for finding
// where a build spends or waits its time: with UNIKFILE_PROFILE=DIR, the
// CPU profile (cpu.pprof), the block and mutex profiles (block.pprof,
// mutex.pprof: time goroutines waited on channels, locks and selects) and
// an execution trace (trace.out, for `go tool trace`) go into DIR, one set
// per process, named by its PID. bench/ sets it with -profile.
//
// It must not change what a build does; unset, it does nothing.
package profile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
)

// Env names the folder the profiles go into.
const Env = "UNIKFILE_PROFILE"

// Start begins profiling when Env is set and returns what ends it and
// writes the profiles; both are no-ops otherwise. Errors are reported on
// stderr: a profile is a diagnostic, never a reason to fail a command.
func Start() (stop func()) {
	dir := os.Getenv(Env)
	if dir == "" {
		return func() {}
	}
	warn := func(err error) { fmt.Fprintf(os.Stderr, "warning: %s: %v\n", Env, err) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		warn(err)
		return func() {}
	}
	prefix := filepath.Join(dir, strconv.Itoa(os.Getpid())+"-")
	runtime.SetBlockProfileRate(int(1e5)) // one sample per 100 µs blocked
	runtime.SetMutexProfileFraction(1)
	var closers []func()
	if f, err := os.Create(prefix + "cpu.pprof"); err != nil {
		warn(err)
	} else if err := pprof.StartCPUProfile(f); err != nil {
		warn(err)
		f.Close()
	} else {
		closers = append(closers, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if f, err := os.Create(prefix + "trace.out"); err != nil {
		warn(err)
	} else if err := trace.Start(f); err != nil {
		warn(err)
		f.Close()
	} else {
		closers = append(closers, func() { trace.Stop(); f.Close() })
	}
	return func() {
		for _, c := range closers {
			c()
		}
		for _, name := range []string{"block", "mutex"} {
			f, err := os.Create(prefix + name + ".pprof")
			if err != nil {
				warn(err)
				continue
			}
			if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
				warn(err)
			}
			f.Close()
		}
	}
}

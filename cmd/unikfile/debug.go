package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// dumpCountsOnSignal prints, at each SIGUSR1, one line of what the process
// holds: goroutines, open file descriptors and child processes. It is how
// a long run (a watch soak, see bench) checks that nothing grows:
//
//	unikfile: pid 1234: goroutines 17, open files 12, children 1
func dumpCountsOnSignal(w io.Writer) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	go func() {
		for range sigs {
			// What is held, not what is cached: Go keeps pipes for
			// splice (the forwarder's copies) in a sync.Pool that two
			// collections empty and whose finalizers close them.
			runtime.GC()
			runtime.GC()
			time.Sleep(100 * time.Millisecond)
			fmt.Fprintf(w, "unikfile: pid %d: goroutines %d, open files %d, children %d\n",
				os.Getpid(), runtime.NumGoroutine()-1, countDir("/proc/self/fd")-1, children(os.Getpid()))
		}
	}()
}

// countDir counts a folder's entries (-1 when it cannot be read).
func countDir(dir string) int {
	f, err := os.Open(dir)
	if err != nil {
		return -1
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return len(names)
}

// children counts the live processes whose parent is pid (a child is
// listed under the thread that started it).
func children(pid int) int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return -1
	}
	n := 0
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		inWord := false
		for _, c := range b {
			if c == ' ' || c == '\n' {
				inWord = false
			} else if !inWord {
				inWord = true
				n++
			}
		}
	}
	return n
}

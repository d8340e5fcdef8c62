package qemu

import (
	"os"
	"strings"

	"github.com/unikfile/unikfile/stages/deploy/console"
	pack "github.com/unikfile/unikfile/stages/package"
)

// consoleFollower reads a console file as it grows (across rotations) and
// feeds it to the console contract's scanner.
type consoleFollower struct {
	console.Scanner
	path string
	r    *consoleReader
}

// poll reads what was appended since the last call.
func (c *consoleFollower) poll() {
	if c.r == nil {
		r, _, err := openConsole(c.path, false)
		if err != nil {
			return // not created yet
		}
		c.r = r
	}
	_ = c.r.copyTo(&c.Scanner)
}

// close releases the file being read.
func (c *consoleFollower) close() {
	if c.r != nil {
		c.r.close()
		c.r = nil
	}
}

// exitTail is how much of the end of a console file consoleExit reads: the
// exit marker is among the last lines the guest prints.
const exitTail = 64 << 10

// consoleExit returns the app's exit status from the end of a console file,
// or nil. It reads a bounded tail, so a console of any size costs the same.
func consoleExit(path string, p *pack.ConsoleProtocol) *int {
	if st := fileExit(path, p); st != nil {
		return st
	}
	// Just rotated: the exit marker may be at the end of the older file.
	return fileExit(rotatedPath(path), p)
}

func fileExit(path string, p *pack.ConsoleProtocol) *int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(fi.Size()-exitTail, 0)
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	return console.LastExitWith(buf[:n], p)
}

// fileTail is the last n lines of a file, or "" when it cannot be read.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(data), "\r", ""), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

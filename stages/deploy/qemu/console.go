package qemu

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/guest"
)

// tailLines is how many console lines an error quotes.
const tailLines = 20

// consoleFollower reads a console file as it grows, line by line, and
// watches for the guest's markers.
type consoleFollower struct {
	path    string
	off     int64
	partial []byte
	last    []string // the last tailLines complete lines
	out     io.Writer
	// errs receives the init's error lines as they appear, when out is nil.
	errs  func(string)
	ready bool
	exit  *int
}

// poll reads what was appended since the last call.
func (c *consoleFollower) poll() {
	f, err := os.Open(c.path)
	if err != nil {
		return // not created yet
	}
	defer f.Close()
	if _, err := f.Seek(c.off, io.SeekStart); err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		c.off += int64(n)
		c.feed(buf[:n])
		if err != nil || n == 0 {
			return
		}
	}
}

func (c *consoleFollower) feed(b []byte) {
	c.partial = append(c.partial, b...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return
		}
		c.line(strings.TrimRight(string(c.partial[:i]), "\r"))
		c.partial = c.partial[i+1:]
	}
}

// flush treats an unterminated last line as complete (the guest is gone).
func (c *consoleFollower) flush() {
	if len(c.partial) > 0 {
		c.line(strings.TrimRight(string(c.partial), "\r"))
		c.partial = nil
	}
}

func (c *consoleFollower) line(l string) {
	if c.out != nil {
		_, _ = io.WriteString(c.out, l+"\n")
	}
	c.last = append(c.last, l)
	if len(c.last) > tailLines {
		c.last = c.last[len(c.last)-tailLines:]
	}
	if strings.HasPrefix(l, guest.ReadyMarker) {
		c.ready = true
	}
	if c.out == nil && c.errs != nil && strings.HasPrefix(l, guest.ErrorPrefix) {
		c.errs(strings.TrimPrefix(l, "unikfile-init: "))
	}
	if st, ok := exitStatus(l); ok && c.exit == nil {
		c.exit = &st
	}
}

// tail is the last console lines, for error messages.
func (c *consoleFollower) tail() string {
	if len(c.last) == 0 {
		return "(the console is empty)"
	}
	return strings.Join(c.last, "\n")
}

// exitStatus parses guest.ExitMarker followed by a decimal status.
func exitStatus(line string) (int, bool) {
	// Markers count only at the start of a line, so that an app echoing
	// one in the middle of its own output does not fake it.
	rest, ok := strings.CutPrefix(line, guest.ExitMarker)
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(rest) && (rest[end] >= '0' && rest[end] <= '9' || end == 0 && rest[end] == '-') {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, false
	}
	return n, true
}

// exitTail is how much of the end of a console file consoleExit reads: the
// exit marker is among the last lines the guest prints.
const exitTail = 64 << 10

// consoleExit returns the app's exit status from the end of a console file,
// or nil. It reads a bounded tail, so a console of any size costs the same.
func consoleExit(path string) *int {
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
	lines := strings.Split(string(buf[:n]), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if st, ok := exitStatus(strings.TrimRight(lines[i], "\r")); ok {
			return &st
		}
	}
	return nil
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

// crStripper drops carriage returns: serial consoles end lines with CRLF.
type crStripper struct{ w io.Writer }

func (s crStripper) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\r') < 0 {
		return s.w.Write(p)
	}
	if _, err := s.w.Write(bytes.ReplaceAll(p, []byte{'\r'}, nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

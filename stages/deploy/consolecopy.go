package deploy

import (
	"errors"
	"io"
	"os"
	"strconv"
)

// A guest console that reaches this host only through an API (a cloud's
// serial console, read by polling) is kept in the instance's run directory
// by unikfile itself, so that `logs` has it after the instance is gone.
// That copy is bounded as QEMU's console file is: when it reaches the
// limit it becomes <path>.1 (replacing an older one) and a new file
// starts, so it takes at most about twice the limit, and readers read
// <path>.1 then <path>.

// DefaultConsoleMax is the size at which a console file is rotated.
const DefaultConsoleMax = 8 << 20

// ConsoleMaxEnv overrides DefaultConsoleMax (bytes), for tests and for
// users who want more or less console kept.
const ConsoleMaxEnv = "UNIKFILE_CONSOLE_MAX_BYTES"

// ConsoleMax is the rotation size: ConsoleMaxEnv when it is set to a
// positive number, else DefaultConsoleMax.
func ConsoleMax() int64 {
	if n := consoleMaxFromEnv(); n > 0 {
		return n
	}
	return DefaultConsoleMax
}

// consoleMaxFromEnv reads ConsoleMaxEnv; 0 when unset or bad.
func consoleMaxFromEnv() int64 {
	n, err := strconv.ParseInt(os.Getenv(ConsoleMaxEnv), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// RotatedConsole is the older generation of the console at path.
func RotatedConsole(path string) string { return path + ".1" }

// ConsoleCopy appends a console to a file that rotates at a size. It is
// not safe for concurrent use; one writer per file.
type ConsoleCopy struct {
	path string
	max  int64
	f    *os.File
	size int64
}

// CreateConsoleCopy starts a console copy at path (truncating what was
// there, and removing an older generation), rotated at max bytes; max 0
// or less never rotates.
func CreateConsoleCopy(path string, max int64) (*ConsoleCopy, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(RotatedConsole(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.Close()
		return nil, err
	}
	return &ConsoleCopy{path: path, max: max, f: f}, nil
}

// Write appends p, rotating first when the file has reached the limit. A
// write is never split across generations, so a line the poll returned
// whole stays whole in one file.
func (c *ConsoleCopy) Write(p []byte) (int, error) {
	if c.f == nil {
		return 0, os.ErrClosed
	}
	if c.max > 0 && c.size >= c.max {
		if err := c.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := c.f.Write(p)
	c.size += int64(n)
	return n, err
}

// rotate makes the current file the older generation and starts a new
// one. The rename replaces the older generation in one step, so a reader
// finds two whole files or (between rename and create) only .1.
func (c *ConsoleCopy) rotate() error {
	if err := c.f.Close(); err != nil {
		return err
	}
	c.f = nil
	if err := os.Rename(c.path, RotatedConsole(c.path)); err != nil {
		return err
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	c.f, c.size = f, 0
	return nil
}

// Close closes the file; the copy stays on disk.
func (c *ConsoleCopy) Close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// OpenConsoleCopy reads the console kept at path: the older generation,
// if there is one, then the current file. It fails with os.ErrNotExist
// when neither is there.
func OpenConsoleCopy(path string) (io.ReadCloser, error) {
	older, oerr := os.Open(RotatedConsole(path))
	cur, err := os.Open(path)
	switch {
	case err != nil && oerr != nil:
		return nil, err
	case err != nil:
		return older, nil // between a rotation's rename and create
	case oerr != nil:
		return cur, nil
	}
	return &twoFiles{Reader: io.MultiReader(older, cur), files: [2]*os.File{older, cur}}, nil
}

type twoFiles struct {
	io.Reader
	files [2]*os.File
}

func (t *twoFiles) Close() error {
	return errors.Join(t.files[0].Close(), t.files[1].Close())
}

// ReadConsoleCopy is the whole console kept at path (both generations);
// nil when there is none.
func ReadConsoleCopy(path string) []byte {
	r, err := OpenConsoleCopy(path)
	if err != nil {
		return nil
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

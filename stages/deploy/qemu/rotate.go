package qemu

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/deploy"
)

// Console rotation. QEMU's file chardev cannot rotate its file itself, but
// QMP's chardev-change swaps a chardev's backend while the guest runs. So
// the serial console is a named chardev (consoleID) writing to console.log,
// and rotating is: rename console.log to console.log.1 (QEMU goes on
// writing into that file), then chardev-change to a new console.log (QEMU
// opens it, switches, and closes the old one). Nothing is copied, the guest
// is not paused, and no byte is lost: what QEMU wrote before the switch is
// in .1, what it wrote after in the new file. Two generations are kept, so
// a console takes at most about twice ConsoleMax, plus its first
// consoleHead bytes kept in console.log.head (the init's early markers).
//
// There is no process of unikfile's beside QEMU to do it: every unikfile
// command that looks at an instance (ps, up, down, logs and logs -f while
// it follows, watch, up --attach) rotates a console that outgrew
// ConsoleMax. A detached instance that no command looks at grows until the
// next one does.
//
// The rotation holds consoleLock exclusively from the rename to the end of
// chardev-change; a reader that finds a new file at the console's path takes
// it shared before it drains the old file and moves on, so it never misses
// the bytes QEMU wrote into the old file during the switch (QMP commands run
// under QEMU's global lock, as the serial device's writes do: once
// chardev-change has returned, the old file gets no more).

// consoleID names the serial console's chardev.
const consoleID = "con0"

// lockWait bounds how long a reader waits for a rotation to finish.
const lockWait = 5 * time.Second

func rotatedPath(console string) string { return deploy.RotatedConsole(console) }
func headPath(console string) string    { return console + ".head" }
func lockPath(console string) string {
	return filepath.Join(filepath.Dir(console), "console.lock")
}

// consoleMax is the provider's rotation size; 0 or less disables it.
func (p *Provider) consoleMax() int64 {
	if p.ConsoleMax != 0 {
		return p.ConsoleMax
	}
	return deploy.DefaultConsoleMax
}

// rotateConsole rotates the console of a running instance whose file has
// reached max. It does nothing for instances started before consoles
// rotated (c.ConsoleRotates false), while another process rotates it, or
// when QEMU does not answer (then nothing was renamed).
func rotateConsole(ctx context.Context, c Config, max int64) error {
	if !c.ConsoleRotates || max <= 0 || c.QMP == "" {
		return nil
	}
	if fi, err := os.Stat(c.Console); err != nil || fi.Size() < max {
		return nil
	}
	fl := flock.New(lockPath(c.Console), flock.SetPermissions(0o600))
	defer fl.Close()
	if ok, err := fl.TryLock(); err != nil || !ok {
		return err // someone else rotates it now
	}
	defer fl.Unlock()
	if fi, err := os.Stat(c.Console); err != nil || fi.Size() < max {
		return nil // rotated meanwhile
	}
	// QEMU must answer before anything moves.
	if err := qmpExecute(ctx, c.QMP, "query-chardev", nil, nil); err != nil {
		return err
	}
	if _, err := os.Stat(headPath(c.Console)); errors.Is(err, os.ErrNotExist) {
		if head, err := readHead(c.Console); err == nil {
			_ = atomicfile.WriteFile(headPath(c.Console), head, 0o600)
		}
	}
	if err := os.Rename(c.Console, rotatedPath(c.Console)); err != nil {
		return err
	}
	args := map[string]any{"id": consoleID, "backend": map[string]any{
		"type": "file", "data": map[string]any{"out": c.Console, "append": true},
	}}
	return qmpExecute(context.WithoutCancel(ctx), c.QMP, "chardev-change", args, nil)
}

// readHead is the start of a console file, up to consoleHead bytes.
func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, consoleHead)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// consoleReader reads an instance's console as it grows, across
// rotations, each byte once.
type consoleReader struct {
	path string
	f    *os.File // the generation being read
}

// openConsole opens the console at path. With all, it starts with the kept
// older generation, so that what is read is all the console there is.
func openConsole(path string, all bool) (*consoleReader, io.Reader, error) {
	var older *os.File
	unlock := func() {}
	if all {
		// The two generations are opened together, outside a rotation.
		fl := flock.New(lockPath(path), flock.SetPermissions(0o600))
		ctx, cancel := context.WithTimeout(context.Background(), lockWait)
		ok, _ := fl.TryRLockContext(ctx, 10*time.Millisecond)
		cancel()
		unlock = func() {
			if ok {
				_ = fl.Unlock()
			}
			_ = fl.Close()
		}
		if f, err := os.Open(rotatedPath(path)); err == nil {
			older = f
		}
	}
	f, err := os.Open(path)
	unlock()
	if err != nil {
		if older == nil {
			return nil, nil, err
		}
		// QEMU is gone in the middle of a rotation: .1 is the console.
		return &consoleReader{path: path, f: older}, nil, nil
	}
	r := &consoleReader{path: path, f: f}
	if older != nil {
		return r, &closingReader{older}, nil
	}
	return r, nil, nil
}

// closingReader closes its file at EOF.
type closingReader struct{ f *os.File }

func (c *closingReader) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	if err == io.EOF {
		_ = c.f.Close()
	}
	return n, err
}

// copyTo writes what was appended since the last call to w, following a
// rotation to the new file once the old one is complete.
func (r *consoleReader) copyTo(w io.Writer) error {
	for {
		if _, err := io.Copy(w, r.f); err != nil {
			return err
		}
		if !r.rotated() {
			return nil
		}
		// Wait for the rotation to end, drain the old file, go on with
		// the new one.
		fl := flock.New(lockPath(r.path), flock.SetPermissions(0o600))
		ctx, cancel := context.WithTimeout(context.Background(), lockWait)
		ok, _ := fl.TryRLockContext(ctx, 10*time.Millisecond)
		cancel()
		_, err := io.Copy(w, r.f)
		if err == nil {
			err = r.copySkipped(w)
		}
		next, oerr := os.Open(r.path)
		if ok {
			_ = fl.Unlock()
		}
		_ = fl.Close()
		if err != nil {
			if next != nil {
				next.Close()
			}
			return err
		}
		if oerr != nil {
			return nil // not recreated (QEMU gone): nothing more comes
		}
		_ = r.f.Close()
		r.f = next
	}
}

// copySkipped writes the kept older generation when it is not the file
// being read: the console rotated twice since the last read (a guest
// printing fast, read every 200 ms), so the generation between the two
// was written and renamed away unseen. Callers hold the shared lock.
// Three rotations between two reads lose a generation, as only two are
// kept.
func (r *consoleReader) copySkipped(w io.Writer) error {
	mid, err := os.Open(rotatedPath(r.path))
	if err != nil {
		return nil
	}
	defer mid.Close()
	cur, err1 := r.f.Stat()
	fi, err2 := mid.Stat()
	if err1 != nil || err2 != nil || os.SameFile(cur, fi) {
		return nil
	}
	_, err = io.Copy(w, mid)
	return err
}

// rotated reports whether the console's path now names another file than
// the one being read.
func (r *consoleReader) rotated() bool {
	cur, err := r.f.Stat()
	if err != nil {
		return false
	}
	fi, err := os.Stat(r.path)
	if err != nil {
		// Renamed, not yet recreated: the rotation is under way.
		return errors.Is(err, os.ErrNotExist) && hasRotated(r.path, cur)
	}
	return !os.SameFile(cur, fi)
}

// hasRotated says whether the file being read is now the kept older
// generation (the path was renamed away from it).
func hasRotated(path string, cur os.FileInfo) bool {
	fi, err := os.Stat(rotatedPath(path))
	return err == nil && os.SameFile(cur, fi)
}

func (r *consoleReader) close() {
	if r.f != nil {
		_ = r.f.Close()
	}
}

// fileIno is a file's inode, for tests.
func fileIno(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

package linux

import (
	"fmt"
	"io"
	"strings"
)

// A writer of the cpio "newc" format (the kernel's initramfs format,
// Documentation/driver-api/early-userspace/buffer-format.rst) that makes
// reproducible archives: mtime 0, owner root, inodes numbered in write
// order, no hard links.

const (
	cpioMagic     = "070701"
	cpioHeaderLen = 110
	cpioTrailer   = "TRAILER!!!"
	cpioMaxSize   = 1<<32 - 1

	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
	modeChar = 0o020000
)

type cpioWriter struct {
	w   io.Writer
	ino uint32
	n   int64 // bytes written, for padding
}

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: w} }

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

// header writes an entry's header and name. Names are relative ("etc/hosts").
func (c *cpioWriter) header(name string, mode, nlink uint32, size int64, rmajor, rminor uint32) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return fmt.Errorf("cpio: bad entry name %q", name)
	}
	if size < 0 || size > cpioMaxSize {
		return fmt.Errorf("cpio: %s: size %d out of range for newc", name, size)
	}
	ino := uint32(0)
	if name != cpioTrailer {
		c.ino++
		ino = c.ino
	}
	h := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cpioMagic, ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if err := c.write([]byte(h + name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) dir(name string, perm uint32) error {
	return c.header(name, modeDir|perm&0o7777, 2, 0, 0, 0)
}

// file writes a regular file of exactly size bytes read from r.
func (c *cpioWriter) file(name string, perm uint32, size int64, r io.Reader) error {
	if err := c.header(name, modeFile|perm&0o7777, 1, size, 0, 0); err != nil {
		return err
	}
	n, err := io.CopyN(c.w, r, size)
	c.n += n
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("cpio: %s: got %d bytes, want %d (file changed while being written?)", name, n, size)
		}
		return err
	}
	return c.pad()
}

func (c *cpioWriter) symlink(name, target string) error {
	if err := c.header(name, modeLink|0o777, 1, int64(len(target)), 0, 0); err != nil {
		return err
	}
	if err := c.write([]byte(target)); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) charDev(name string, perm, major, minor uint32) error {
	return c.header(name, modeChar|perm&0o7777, 1, 0, major, minor)
}

// close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) close() error {
	return c.header(cpioTrailer, 0, 1, 0, 0, 0)
}

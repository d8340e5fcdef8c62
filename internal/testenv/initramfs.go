package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CachedKernel finds a Debian kernel `unikfile kernel fetch` put in a
// cache ($UNIKFILE_CACHE_DIR, the user's, root's): its vmlinuz and modules
// folder, or, when there is none, where it looked. Tests that boot a small
// initramfs of their own on it skip by that.
func CachedKernel() (vmlinuz, modules, looked string) {
	var roots []string
	if d := os.Getenv("UNIKFILE_CACHE_DIR"); d != "" {
		roots = append(roots, filepath.Join(d, "kernels"))
	}
	if d, err := os.UserCacheDir(); err == nil {
		roots = append(roots, filepath.Join(d, "unikfile", "kernels"))
	}
	roots = append(roots, "/root/.cache/unikfile/kernels")
	for _, r := range roots {
		matches, _ := filepath.Glob(filepath.Join(r, "*", "boot", "vmlinuz-*"))
		for _, m := range matches {
			ver := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
			mods := filepath.Join(filepath.Dir(filepath.Dir(m)), "lib", "modules", ver)
			if _, err := os.Stat(mods); err == nil {
				return m, mods, ""
			}
		}
	}
	return "", "", strings.Join(roots, ", ")
}

// CPIO writes a "newc" cpio archive, the initramfs format, for tests'
// own guests. The zero value is empty and ready.
type CPIO struct {
	buf bytes.Buffer
	ino int
}

func (c *CPIO) entry(name string, mode uint32, data []byte, rmajor, rminor int) {
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(&c.buf, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.buf.WriteString(name)
	c.buf.WriteByte(0)
	c.pad()
	c.buf.Write(data)
	c.pad()
}

func (c *CPIO) pad() {
	for c.buf.Len()%4 != 0 {
		c.buf.WriteByte(0)
	}
}

// Dir adds a folder (mode 0755).
func (c *CPIO) Dir(name string) { c.entry(name, 0o040755, nil, 0, 0) }

// File adds a regular file with permissions perm.
func (c *CPIO) File(name string, perm uint32, data []byte) { c.entry(name, 0o100000|perm, data, 0, 0) }

// CharDev adds a character device node (mode 0600).
func (c *CPIO) CharDev(name string, major, minor int) { c.entry(name, 0o020600, nil, major, minor) }

// Finish ends the archive and returns its bytes.
func (c *CPIO) Finish() []byte {
	c.entry("TRAILER!!!", 0, nil, 0, 0)
	return c.buf.Bytes()
}

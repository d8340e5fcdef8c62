package elfdeps

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// FS is the filesystem that libraries, the loader and the loader's
// configuration are taken from: the host's (Host), a folder holding
// another system's root (Dir), or a builder image read through BuildKit.
// Names are absolute, slash-separated paths in that filesystem.
type FS interface {
	// Lstat describes name without following a final symbolic link.
	Lstat(name string) (fs.FileInfo, error)
	// ReadLink is the target of the symbolic link name.
	ReadLink(name string) (string, error)
	// Open opens the regular file at name, following symbolic links
	// inside the filesystem.
	Open(name string) (File, error)
	// Glob lists the names matching pattern, sorted; only the last
	// element of the pattern may hold wildcards.
	Glob(pattern string) ([]string, error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

// Host is the host's own filesystem, the default of Options.From.
var Host FS = hostFS{}

type hostFS struct{}

func (hostFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }
func (hostFS) ReadLink(name string) (string, error)   { return os.Readlink(name) }
func (hostFS) Open(name string) (File, error)         { return os.Open(name) }
func (hostFS) Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	sort.Strings(m)
	return m, err
}

// Dir is the filesystem of another system whose root is the host folder
// root (an unpacked image, say). Symbolic links are followed inside root:
// an absolute target starts again at root, never at the host's /.
func Dir(root string) FS { return dirFS{root: root} }

type dirFS struct{ root string }

func (d dirFS) host(name string) string {
	return filepath.Join(d.root, filepath.FromSlash(path.Clean("/"+name)))
}

func (d dirFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(d.host(name)) }
func (d dirFS) ReadLink(name string) (string, error)   { return os.Readlink(d.host(name)) }

func (d dirFS) Open(name string) (File, error) {
	real, err := Resolve(d, name)
	if err != nil {
		return nil, err
	}
	return os.Open(d.host(real))
}

func (d dirFS) Glob(pattern string) ([]string, error) {
	dir, pat := path.Split(path.Clean("/" + pattern))
	real, err := Resolve(d, dir)
	if err != nil {
		return nil, nil
	}
	m, err := filepath.Glob(filepath.Join(d.host(real), pat))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range m {
		out = append(out, path.Join(dir, filepath.Base(p)))
	}
	sort.Strings(out)
	return out, nil
}

// Resolve follows the symbolic links of name inside fsys, as the guest's
// kernel would with fsys as its root, and returns the path of what name
// names. Every element must exist.
func Resolve(fsys FS, name string) (string, error) {
	rest := strings.Split(strings.Trim(path.Clean("/"+name), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := fsys.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", name)
		}
		target, err := fsys.ReadLink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return cur, nil
}

// statFollow is fs.Stat through fsys, following links.
func statFollow(fsys FS, name string) (fs.FileInfo, error) {
	real, err := Resolve(fsys, name)
	if err != nil {
		return nil, err
	}
	return fsys.Lstat(real)
}

// isNotExist reports whether err says a file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

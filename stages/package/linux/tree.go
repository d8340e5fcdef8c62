package linux

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// tree is the initramfs's file tree before it is written: paths are
// relative, slash-separated and clean ("etc/hosts"). Permissions are
// normalized (0755 or 0644, directories 0755) so that the host's umask and
// owners never reach the image.
type tree struct {
	nodes map[string]*node
}

type nodeKind int

const (
	kindDir nodeKind = iota
	kindFile
	kindSymlink
	kindCharDev
)

type node struct {
	kind   nodeKind
	perm   uint32
	src    string // kindFile: host file to copy, or
	data   []byte // kindFile: contents
	target string // kindSymlink
	major  uint32 // kindCharDev
	minor  uint32
	from   string // where it came from, for conflict messages
}

func newTree() *tree { return &tree{nodes: map[string]*node{}} }

// cleanPath turns "/etc/hosts" or "etc/hosts" into "etc/hosts".
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("cannot add the root directory")
	}
	return c[1:], nil
}

// put adds n at p, creating parent directories. A directory may be added
// where one exists; anything else replacing an entry is allowed only when
// replace is true.
func (t *tree) put(p string, n *node, replace bool) error {
	p, err := cleanPath(p)
	if err != nil {
		return err
	}
	if err := t.mkdirAll(path.Dir(p), n.from); err != nil {
		return err
	}
	if old, ok := t.nodes[p]; ok {
		switch {
		case old.kind == kindDir && n.kind == kindDir:
			old.perm = n.perm
			return nil
		case !replace || old.kind == kindDir || n.kind == kindDir:
			return fmt.Errorf("/%s: %s conflicts with %s", p, n.from, old.from)
		}
	}
	t.nodes[p] = n
	return nil
}

func (t *tree) mkdirAll(dir, from string) error {
	if dir == "." || dir == "/" || dir == "" {
		return nil
	}
	if old, ok := t.nodes[dir]; ok {
		if old.kind != kindDir {
			return fmt.Errorf("/%s: %s needs a directory there, but %s put a file", dir, from, old.from)
		}
		return nil
	}
	if err := t.mkdirAll(path.Dir(dir), from); err != nil {
		return err
	}
	t.nodes[dir] = &node{kind: kindDir, perm: 0o755, from: from}
	return nil
}

func (t *tree) has(p string) bool {
	p, err := cleanPath(p)
	if err != nil {
		return false
	}
	_, ok := t.nodes[p]
	return ok
}

// filePerm keeps only whether a file is executable.
func filePerm(m fs.FileMode) uint32 {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// addHostTree adds the tree under root (a bundle) at the image's root.
// Symbolic links are kept as links; devices, sockets and pipes are errors.
func (t *tree) addHostTree(root, from string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch typ := d.Type(); {
		case typ.IsDir():
			return t.put(rel, &node{kind: kindDir, perm: 0o755, from: from}, false)
		case typ.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return t.put(rel, &node{kind: kindFile, perm: filePerm(fi.Mode()), src: p, from: from}, false)
		case typ&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return t.put(rel, &node{kind: kindSymlink, target: target, from: from}, false)
		default:
			return fmt.Errorf("%s: %s is a %v; the image can hold only files, directories and symbolic links", from, p, typ)
		}
	})
}

// writeCPIO writes the tree as a newc archive: entries in path order, which
// puts every directory before its contents.
func (t *tree) writeCPIO(w io.Writer) error {
	paths := make([]string, 0, len(t.nodes))
	for p := range t.nodes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	cw := newCPIOWriter(w)
	for _, p := range paths {
		n := t.nodes[p]
		var err error
		switch n.kind {
		case kindDir:
			err = cw.dir(p, n.perm)
		case kindSymlink:
			err = cw.symlink(p, n.target)
		case kindCharDev:
			err = cw.charDev(p, n.perm, n.major, n.minor)
		case kindFile:
			if n.src == "" {
				err = cw.file(p, n.perm, int64(len(n.data)), strings.NewReader(string(n.data)))
				break
			}
			err = copyHostFile(cw, p, n)
		}
		if err != nil {
			return fmt.Errorf("write /%s: %w", p, err)
		}
	}
	return cw.close()
}

func copyHostFile(cw *cpioWriter, p string, n *node) error {
	f, err := os.Open(n.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", n.src)
	}
	return cw.file(p, n.perm, fi.Size(), f)
}

// size is about the size of the uncompressed archive: contents plus
// headers and names.
func (t *tree) size() (int64, error) {
	var total int64
	for p, n := range t.nodes {
		total += cpioHeaderLen + int64(len(p)) + 4
		switch {
		case n.kind == kindFile && n.src != "":
			fi, err := os.Stat(n.src)
			if err != nil {
				return 0, err
			}
			total += fi.Size()
		case n.kind == kindFile:
			total += int64(len(n.data))
		case n.kind == kindSymlink:
			total += int64(len(n.target))
		}
	}
	return total, nil
}

package rofs

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// The on-disk format (fs/rofs/rofs.hh). All numbers are little-endian.
const (
	BlockSize = 512        // the unit of every offset and count
	Magic     = 0xDEADBEAD // rofs_super_block.magic
	Version   = 1          // rofs_super_block.version

	// SuperblockSize is rofs_super_block: eight 64-bit fields (magic,
	// version, block size, first block and block count of the structure
	// tables, then the number of directory entries, symbolic links and
	// inodes).
	SuperblockSize = 64
	// InodeSize is rofs_inode as the kernel copies it from disk: the mode
	// (a 32-bit mode_t padded to 8 bytes), the inode number, the data
	// offset and the size or child count, 8 bytes each.
	InodeSize = 32
	// MaxName is the longest name a directory entry can hold: OSv copies
	// names into struct dirent's 256-byte d_name.
	MaxName = 255
	// MaxLink is the longest symbolic-link target (a 16-bit length).
	MaxLink = 0xffff
)

// Inode modes: the file type bits only. OSv reports every file as 0555.
const (
	ModeDir     = 0o040000
	ModeFile    = 0o100000
	ModeSymlink = 0o120000
)

// An inode's data offset and count mean, by its type:
//   - file: the first block of its data, and its size in bytes;
//   - directory: the index of its first entry in the directory-entry
//     table, and its number of entries (they are contiguous);
//   - symbolic link: its index in the symbolic-link table, and 1.
//
// Inode numbers start at 1; inode 1 is the root directory. A directory
// entry is the child's inode number (8 bytes), the name's length (2
// bytes) and the name; a symbolic link is the target's length (2 bytes)
// and the target. Names and targets carry no terminating NUL.

type kind int

const (
	kindDir kind = iota
	kindFile
	kindSymlink
)

type node struct {
	kind     kind
	children map[string]*node // kindDir
	data     []byte           // kindFile, when src is ""
	src      string           // kindFile: a host file, read when written
	size     int64            // kindFile
	target   string           // kindSymlink
}

// FS is a file tree to be written as a ROFS. The zero value is not usable;
// call New.
type FS struct {
	root *node
}

// New returns an FS holding only the root directory.
func New() *FS {
	return &FS{root: &node{kind: kindDir, children: map[string]*node{}}}
}

// ErrExist is wrapped by the errors of adding what is already there.
var ErrExist = fs.ErrExist

// split checks an absolute or relative slash-separated path and returns
// its names; the root is no names.
func split(p string) ([]string, error) {
	if strings.ContainsRune(p, 0) {
		return nil, fmt.Errorf("path %q contains a NUL byte", p)
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return nil, nil
	}
	names := strings.Split(c[1:], "/")
	for _, n := range names {
		if len(n) > MaxName {
			return nil, fmt.Errorf("path %q: the name %.20q... is %d bytes; ROFS names are at most %d", p, n, len(n), MaxName)
		}
	}
	return names, nil
}

// dir returns the directory at names, creating what is missing.
func (f *FS) dir(names []string, p string) (*node, error) {
	d := f.root
	for i, n := range names {
		c, ok := d.children[n]
		if !ok {
			c = &node{kind: kindDir, children: map[string]*node{}}
			d.children[n] = c
		}
		if c.kind != kindDir {
			return nil, fmt.Errorf("%s: /%s is not a directory", p, strings.Join(names[:i+1], "/"))
		}
		d = c
	}
	return d, nil
}

// Lookup reports whether p exists, and whether it is a directory.
func (f *FS) Lookup(p string) (exists, isDir bool) {
	names, err := split(p)
	if err != nil {
		return false, false
	}
	n := f.root
	for _, name := range names {
		if n.kind != kindDir {
			return false, false
		}
		c, ok := n.children[name]
		if !ok {
			return false, false
		}
		n = c
	}
	return true, n.kind == kindDir
}

// Mkdir creates the directory p and its parents; an existing directory is
// no error.
func (f *FS) Mkdir(p string) error {
	names, err := split(p)
	if err != nil {
		return err
	}
	_, err = f.dir(names, p)
	return err
}

// put adds n at p, which must not exist yet; parents are created.
func (f *FS) put(p string, n *node) error {
	names, err := split(p)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%s: the root is a directory", p)
	}
	d, err := f.dir(names[:len(names)-1], p)
	if err != nil {
		return err
	}
	last := names[len(names)-1]
	if _, ok := d.children[last]; ok {
		return fmt.Errorf("/%s: %w", strings.Join(names, "/"), ErrExist)
	}
	d.children[last] = n
	return nil
}

// AddBytes adds a file at p holding data.
func (f *FS) AddBytes(p string, data []byte) error {
	return f.put(p, &node{kind: kindFile, data: append([]byte(nil), data...), size: int64(len(data))})
}

// AddHostFile adds a file at p whose content is the host file src, read
// when the FS is written; it must keep its size until then.
func (f *FS) AddHostFile(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	return f.put(p, &node{kind: kindFile, src: src, size: fi.Size()})
}

// Symlink adds a symbolic link at p pointing at target.
func (f *FS) Symlink(p, target string) error {
	if target == "" || len(target) > MaxLink || strings.ContainsRune(target, 0) {
		return fmt.Errorf("symbolic link %s: target %q must be 1 to %d bytes without NUL", p, target, MaxLink)
	}
	return f.put(p, &node{kind: kindSymlink, target: target})
}

// entry is a node with its place in the layout.
type entry struct {
	n        *node
	ino      uint64
	children []childRef // kindDir, in name order
}

type childRef struct {
	name string
	ino  uint64
}

// layout numbers the inodes breadth-first from the root, children in byte
// order of their names.
func (f *FS) layout() []*entry {
	out := []*entry{{n: f.root, ino: 1}}
	for i := 0; i < len(out); i++ {
		e := out[i]
		if e.n.kind != kindDir {
			continue
		}
		names := make([]string, 0, len(e.n.children))
		for name := range e.n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c := &entry{n: e.n.children[name], ino: uint64(len(out) + 1)}
			out = append(out, c)
			e.children = append(e.children, childRef{name, c.ino})
		}
	}
	return out
}

func blocks(n int64) int64 { return (n + BlockSize - 1) / BlockSize }

// plan is the layout with every table's bytes and position.
type plan struct {
	entries     []*entry
	dataBlocks  int64
	firstBlock  []int64 // per entry: first data block of a file
	tables      []byte  // directory entries, symbolic links, inodes
	dirents     int
	links       int
	tableBlocks int64
}

func (f *FS) plan() *plan {
	entries := f.layout()
	p := &plan{entries: entries, firstBlock: make([]int64, len(entries))}
	next := int64(1) // block 0 is the superblock
	for i, e := range entries {
		if e.n.kind == kindFile {
			p.firstBlock[i] = next
			next += blocks(e.n.size)
		}
	}
	p.dataBlocks = next - 1

	var dirents, links, inodes []byte
	le := binary.LittleEndian
	for i, e := range entries {
		var mode, offset, count uint64
		switch e.n.kind {
		case kindDir:
			mode, offset, count = ModeDir, uint64(p.dirents), uint64(len(e.children))
			for _, c := range e.children {
				dirents = le.AppendUint64(dirents, c.ino)
				dirents = le.AppendUint16(dirents, uint16(len(c.name)))
				dirents = append(dirents, c.name...)
				p.dirents++
			}
		case kindFile:
			mode, offset, count = ModeFile, uint64(p.firstBlock[i]), uint64(e.n.size)
		case kindSymlink:
			mode, offset, count = ModeSymlink, uint64(p.links), 1
			links = le.AppendUint16(links, uint16(len(e.n.target)))
			links = append(links, e.n.target...)
			p.links++
		}
		inodes = le.AppendUint64(inodes, mode)
		inodes = le.AppendUint64(inodes, e.ino)
		inodes = le.AppendUint64(inodes, offset)
		inodes = le.AppendUint64(inodes, count)
	}
	p.tables = append(append(dirents, links...), inodes...)
	p.tableBlocks = blocks(int64(len(p.tables)))
	return p
}

// Size is the number of bytes WriteTo writes: a whole number of blocks.
func (f *FS) Size() int64 {
	p := f.plan()
	return (1 + p.dataBlocks + p.tableBlocks) * BlockSize
}

// WriteTo writes the file system to w: the superblock, the files' data,
// then the tables, each padded to whole blocks.
func (f *FS) WriteTo(w io.Writer) (int64, error) {
	p := f.plan()
	cw := &countWriter{w: w}
	le := binary.LittleEndian
	sb := make([]byte, 0, BlockSize)
	for _, v := range []uint64{Magic, Version, BlockSize, uint64(1 + p.dataBlocks), uint64(p.tableBlocks), uint64(p.dirents), uint64(p.links), uint64(len(p.entries))} {
		sb = le.AppendUint64(sb, v)
	}
	if err := cw.padded(sb); err != nil {
		return cw.n, err
	}
	for i, e := range p.entries {
		if e.n.kind != kindFile {
			continue
		}
		if cw.n != p.firstBlock[i]*BlockSize {
			return cw.n, fmt.Errorf("rofs: inode %d starts at byte %d, planned %d", e.ino, cw.n, p.firstBlock[i]*BlockSize)
		}
		if err := writeFile(cw, e.n); err != nil {
			return cw.n, err
		}
	}
	if err := cw.padded(p.tables); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// writeFile writes a file's content and pads it to a block boundary.
func writeFile(cw *countWriter, n *node) error {
	if n.src == "" {
		return cw.padded(n.data)
	}
	fh, err := os.Open(n.src)
	if err != nil {
		return err
	}
	defer fh.Close()
	start := cw.n
	copied, err := io.Copy(cw, io.LimitReader(fh, n.size+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", n.src, err)
	}
	if copied != n.size {
		return fmt.Errorf("%s changed while the file system was written (%d bytes, was %d)", n.src, copied, n.size)
	}
	return cw.pad(cw.n - start)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

var zeros [BlockSize]byte

// pad writes the zeros that bring written bytes to a block boundary.
func (c *countWriter) pad(written int64) error {
	if r := written % BlockSize; r != 0 {
		if _, err := c.Write(zeros[:BlockSize-r]); err != nil {
			return err
		}
	}
	return nil
}

func (c *countWriter) padded(b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	return c.pad(int64(len(b)))
}

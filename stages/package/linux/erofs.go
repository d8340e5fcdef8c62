package linux

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// A writer of EROFS images (the kernel's fs/erofs/erofs_fs.h: the
// on-disk format), uncompressed, for a read-only root filesystem that the
// guest reads on demand instead of unpacking it into memory. The same
// tree gives the same bytes: 4 KiB blocks, compact (32-byte) inodes whose
// times are the superblock's build time (0), owner root, inode numbers in
// path order, directory entries sorted by name as the format requires.
//
// Layout: block 0 holds the superblock (at byte 1024); the metadata area
// starts at block 1 and holds the inodes in path order (the root first),
// each followed by the tail of its data when the tail fits in the rest of
// the inode's block (the FLAT_INLINE layout), so small files and
// directories take no data block; the data blocks follow.

const (
	erofsBlockSize   = 4096
	erofsSuperOffset = 1024
	erofsMagic       = 0xE0F5E1E2
	erofsInodeSize   = 32 // compact inodes
	erofsSlotSize    = 32 // one nid
	erofsDirentSize  = 12
	erofsMetaBlkaddr = 1
	erofsMaxName     = 255

	erofsLayoutFlatPlain  = 0
	erofsLayoutFlatInline = 2

	// Directory entry file types (include/linux/fs_types.h).
	erofsFTReg     = 1
	erofsFTDir     = 2
	erofsFTChr     = 3
	erofsFTSymlink = 7
)

// erofsInode is one inode being laid out.
type erofsInode struct {
	path   string // "" is the root
	n      *node
	size   int64
	data   []byte // directories and symlinks: their whole content
	nid    uint64
	ino    uint32
	nlink  int
	inline bool   // the tail is after the inode
	tail   int64  // bytes in the tail
	blkadr uint32 // first data block
	blocks uint32 // whole data blocks
}

type erofsDirent struct {
	name string
	in   *erofsInode
}

func (in *erofsInode) mode() uint16 {
	switch in.n.kind {
	case kindDir:
		return uint16(modeDir | in.n.perm&0o7777)
	case kindSymlink:
		return uint16(modeLink | 0o777)
	case kindCharDev:
		return uint16(modeChar | in.n.perm&0o7777)
	}
	return uint16(modeFile | in.n.perm&0o7777)
}

func (in *erofsInode) fileType() uint8 {
	switch in.n.kind {
	case kindDir:
		return erofsFTDir
	case kindSymlink:
		return erofsFTSymlink
	case kindCharDev:
		return erofsFTChr
	}
	return erofsFTReg
}

// writeEROFS writes the tree as an EROFS image; uuid names the volume.
func (t *tree) writeEROFS(w io.Writer, uuid [16]byte) error {
	inodes, byPath, err := t.erofsInodes()
	if err != nil {
		return err
	}
	// Directory contents: entries sorted by name, "." and ".." included.
	children := map[string][]erofsDirent{}
	for _, in := range inodes[1:] {
		parent := path.Dir(in.path)
		if parent == "." {
			parent = ""
		}
		children[parent] = append(children[parent], erofsDirent{name: path.Base(in.path), in: in})
	}
	for _, in := range inodes {
		if in.n.kind != kindDir {
			continue
		}
		parent := byPath[""]
		if in.path != "" {
			p := path.Dir(in.path)
			if p == "." {
				p = ""
			}
			parent = byPath[p]
		}
		ents := append([]erofsDirent{{".", in}, {"..", parent}}, children[in.path]...)
		sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
		in.nlink = 2
		for _, e := range children[in.path] {
			if e.in.n.kind == kindDir {
				in.nlink++
			}
		}
		// The size is known before the nids: entries have a fixed size.
		in.size = erofsDirSize(ents)
		in.data = nil
		children[in.path] = ents
	}
	// Metadata: each inode in a 32-byte slot, its inline tail after it in
	// the same block.
	off := int64(erofsMetaBlkaddr * erofsBlockSize)
	for _, in := range inodes {
		in.tail = in.size % erofsBlockSize
		in.inline = in.tail > 0 && in.tail <= erofsBlockSize-erofsInodeSize
		need := int64(erofsInodeSize)
		if in.inline {
			need += in.tail
		}
		if rest := erofsBlockSize - off%erofsBlockSize; need > rest {
			off += rest // start a new block
		}
		in.nid = uint64(off-erofsMetaBlkaddr*erofsBlockSize) / erofsSlotSize
		off += (need + erofsSlotSize - 1) / erofsSlotSize * erofsSlotSize
	}
	if root := inodes[0]; root.nid > 0xffff {
		return fmt.Errorf("erofs: the root inode's nid %d does not fit the superblock", root.nid)
	}
	metaBlocks := (off + erofsBlockSize - 1) / erofsBlockSize
	blk := uint32(metaBlocks)
	for _, in := range inodes {
		full := in.size / erofsBlockSize
		if !in.inline && in.tail > 0 {
			full++
		}
		in.blocks = uint32(full)
		if full > 0 {
			in.blkadr = blk
			blk += uint32(full)
		}
	}
	// Directory data, now that nids are known.
	for _, in := range inodes {
		if in.n.kind == kindDir {
			in.data = erofsDirData(children[in.path])
			if int64(len(in.data)) != in.size {
				return fmt.Errorf("erofs: directory /%s: %d bytes laid out, %d written", in.path, in.size, len(in.data))
			}
		}
	}

	img := make([]byte, metaBlocks*erofsBlockSize)
	sb := img[erofsSuperOffset : erofsSuperOffset+128]
	le := binary.LittleEndian
	le.PutUint32(sb[0:], erofsMagic)
	sb[12] = 12 // blkszbits
	le.PutUint16(sb[14:], uint16(inodes[0].nid))
	le.PutUint64(sb[16:], uint64(len(inodes)))
	le.PutUint32(sb[36:], blk) // blocks
	le.PutUint32(sb[40:], erofsMetaBlkaddr)
	copy(sb[48:64], uuid[:])
	copy(sb[64:80], "unikfile")
	for _, in := range inodes {
		p := erofsMetaBlkaddr*erofsBlockSize + int64(in.nid)*erofsSlotSize
		b := img[p : p+erofsInodeSize]
		layout := erofsLayoutFlatPlain
		if in.inline {
			layout = erofsLayoutFlatInline
		}
		le.PutUint16(b[0:], uint16(layout<<1)) // compact inode, bit 0 clear
		le.PutUint16(b[4:], in.mode())
		le.PutUint16(b[6:], uint16(max(in.nlink, 1)))
		le.PutUint32(b[8:], uint32(in.size))
		switch in.n.kind {
		case kindCharDev:
			// The kernel's new_encode_dev.
			le.PutUint32(b[16:], in.n.minor&0xff|in.n.major<<8|(in.n.minor&^0xff)<<12)
		default:
			le.PutUint32(b[16:], in.blkadr)
		}
		le.PutUint32(b[20:], in.ino)
		if in.inline {
			tail, err := in.read(in.size-in.tail, in.tail)
			if err != nil {
				return err
			}
			copy(img[p+erofsInodeSize:], tail)
		}
	}
	if _, err := w.Write(img); err != nil {
		return err
	}
	// Data blocks, in inode order.
	zero := make([]byte, erofsBlockSize)
	for _, in := range inodes {
		if in.blocks == 0 {
			continue
		}
		n := int64(in.blocks) * erofsBlockSize
		if n > in.size {
			n = in.size
		}
		if err := in.copyTo(w, n); err != nil {
			return fmt.Errorf("erofs: /%s: %w", in.path, err)
		}
		if pad := int64(in.blocks)*erofsBlockSize - n; pad > 0 {
			if _, err := w.Write(zero[:pad]); err != nil {
				return err
			}
		}
	}
	return nil
}

// erofsInodes lists the tree's entries as inodes, the root first, then in
// path order; files get their size.
func (t *tree) erofsInodes() ([]*erofsInode, map[string]*erofsInode, error) {
	paths := make([]string, 0, len(t.nodes))
	for p := range t.nodes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	root := &erofsInode{path: "", n: &node{kind: kindDir, perm: 0o755}}
	inodes := []*erofsInode{root}
	byPath := map[string]*erofsInode{"": root}
	for _, p := range paths {
		n := t.nodes[p]
		if len(path.Base(p)) > erofsMaxName {
			return nil, nil, fmt.Errorf("erofs: /%s: name longer than %d bytes", p, erofsMaxName)
		}
		in := &erofsInode{path: p, n: n, nlink: 1}
		switch n.kind {
		case kindSymlink:
			in.data = []byte(n.target)
			in.size = int64(len(n.target))
		case kindFile:
			if n.src == "" {
				in.data = n.data
				in.size = int64(len(n.data))
				break
			}
			fi, err := os.Stat(n.src)
			if err != nil {
				return nil, nil, err
			}
			if !fi.Mode().IsRegular() {
				return nil, nil, fmt.Errorf("%s is not a regular file", n.src)
			}
			in.size = fi.Size()
		}
		if in.size > 1<<32-1 {
			return nil, nil, fmt.Errorf("erofs: /%s is %d bytes, more than compact inodes hold", p, in.size)
		}
		inodes = append(inodes, in)
		byPath[p] = in
	}
	for i, in := range inodes {
		in.ino = uint32(i + 1)
	}
	return inodes, byPath, nil
}

// erofsDirBlocks splits sorted entries into directory blocks: each block
// is its entries' 12-byte records followed by their names.
func erofsDirBlocks(ents []erofsDirent) [][]erofsDirent {
	var blocks [][]erofsDirent
	var cur []erofsDirent
	used := 0
	for _, e := range ents {
		need := erofsDirentSize + len(e.name)
		if used+need > erofsBlockSize {
			blocks = append(blocks, cur)
			cur, used = nil, 0
		}
		cur = append(cur, e)
		used += need
	}
	return append(blocks, cur)
}

func erofsDirSize(ents []erofsDirent) int64 {
	blocks := erofsDirBlocks(ents)
	var size int64
	for i, b := range blocks {
		if i < len(blocks)-1 {
			size += erofsBlockSize
			continue
		}
		for _, e := range b {
			size += int64(erofsDirentSize + len(e.name))
		}
	}
	return size
}

// erofsDirData is a directory's content: every block but the last padded
// with zeros (a name ends at the next entry's name, or at a zero byte or
// the block's end for the last one).
func erofsDirData(ents []erofsDirent) []byte {
	blocks := erofsDirBlocks(ents)
	var out []byte
	le := binary.LittleEndian
	for i, b := range blocks {
		start := len(out)
		nameoff := erofsDirentSize * len(b)
		recs := make([]byte, nameoff)
		var names []byte
		for j, e := range b {
			r := recs[j*erofsDirentSize:]
			le.PutUint64(r[0:], e.in.nid)
			le.PutUint16(r[8:], uint16(nameoff+len(names)))
			r[10] = e.in.fileType()
			names = append(names, e.name...)
		}
		out = append(out, recs...)
		out = append(out, names...)
		if i < len(blocks)-1 {
			out = append(out, make([]byte, erofsBlockSize-(len(out)-start))...)
		}
	}
	return out
}

// read returns n bytes of the inode's content from offset off.
func (in *erofsInode) read(off, n int64) ([]byte, error) {
	if in.n.kind != kindFile || in.n.src == "" {
		return in.data[off : off+n], nil
	}
	f, err := os.Open(in.n.src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("%s: %w (changed while being written?)", in.n.src, err)
	}
	return b, nil
}

// copyTo writes the inode's first n bytes to w.
func (in *erofsInode) copyTo(w io.Writer, n int64) error {
	if in.n.kind != kindFile || in.n.src == "" {
		_, err := w.Write(in.data[:n])
		return err
	}
	f, err := os.Open(in.n.src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(w, f, n); err != nil {
		return fmt.Errorf("%s: %w (changed while being written?)", in.n.src, err)
	}
	return nil
}

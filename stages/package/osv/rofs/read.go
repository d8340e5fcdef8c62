package rofs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Superblock is a ROFS's block 0.
type Superblock struct {
	Magic, Version, BlockSize               uint64
	TablesFirstBlock, TablesBlocks          uint64 // structure_info_first_block, _blocks_count
	DirectoryEntries, SymbolicLinks, Inodes uint64
}

// Inode is one entry of the inode table.
type Inode struct {
	Mode, Number, DataOffset, Count uint64
}

// DirEntry is one entry of the directory-entry table.
type DirEntry struct {
	Inode uint64
	Name  string
}

// Image is a ROFS as read back: its superblock and tables.
type Image struct {
	Superblock Superblock
	DirEntries []DirEntry
	Links      []string
	Inodes     []Inode
	raw        []byte
}

// Parse reads a ROFS the way OSv's kernel does (fs/rofs/rofs_vfsops.cc:
// the superblock, then the tables from their first block), checking every
// count and offset against what is there. It is for tests and inspection.
func Parse(b []byte) (*Image, error) {
	le := binary.LittleEndian
	if len(b) < BlockSize || len(b)%BlockSize != 0 {
		return nil, fmt.Errorf("rofs: %d bytes are not whole blocks", len(b))
	}
	var sb Superblock
	if err := binary.Read(bytes.NewReader(b[:SuperblockSize]), le, &sb); err != nil {
		return nil, err
	}
	if sb.Magic != Magic || sb.Version != Version || sb.BlockSize != BlockSize {
		return nil, fmt.Errorf("rofs: superblock %+v is not a version %d ROFS with %d-byte blocks", sb, Version, BlockSize)
	}
	start, end := sb.TablesFirstBlock*BlockSize, (sb.TablesFirstBlock+sb.TablesBlocks)*BlockSize
	if sb.TablesBlocks == 0 || sb.TablesFirstBlock == 0 || end > uint64(len(b)) {
		return nil, fmt.Errorf("rofs: tables at blocks %d+%d beyond %d bytes", sb.TablesFirstBlock, sb.TablesBlocks, len(b))
	}
	t := b[start:end]
	img := &Image{Superblock: sb, raw: b}
	p := 0
	need := func(n int) error {
		if p+n > len(t) {
			return fmt.Errorf("rofs: tables truncated at byte %d (+%d of %d)", p, n, len(t))
		}
		return nil
	}
	for i := uint64(0); i < sb.DirectoryEntries; i++ {
		if err := need(10); err != nil {
			return nil, err
		}
		ino, n := le.Uint64(t[p:]), int(le.Uint16(t[p+8:]))
		p += 10
		if err := need(n); err != nil {
			return nil, err
		}
		img.DirEntries = append(img.DirEntries, DirEntry{ino, string(t[p : p+n])})
		p += n
	}
	for i := uint64(0); i < sb.SymbolicLinks; i++ {
		if err := need(2); err != nil {
			return nil, err
		}
		n := int(le.Uint16(t[p:]))
		p += 2
		if err := need(n); err != nil {
			return nil, err
		}
		img.Links = append(img.Links, string(t[p:p+n]))
		p += n
	}
	for i := uint64(0); i < sb.Inodes; i++ {
		if err := need(InodeSize); err != nil {
			return nil, err
		}
		in := Inode{le.Uint64(t[p:]), le.Uint64(t[p+8:]), le.Uint64(t[p+16:]), le.Uint64(t[p+24:])}
		img.Inodes = append(img.Inodes, in)
		p += InodeSize
	}
	for _, c := range t[p:] {
		if c != 0 {
			return nil, errors.New("rofs: the tables' last block is not padded with zeros")
		}
	}
	return img, nil
}

// Node is what a path holds in a parsed image.
type Node struct {
	Mode   uint64 // ModeDir, ModeFile or ModeSymlink
	Data   []byte // a file's content
	Target string // a link's target
}

// Tree walks the image from the root (inode 1) and returns every path
// with what it holds. Every inode must be reached exactly once.
func (img *Image) Tree() (map[string]Node, error) {
	out := map[string]Node{}
	seen := map[uint64]bool{}
	var visit func(p string, ino uint64) error
	visit = func(p string, ino uint64) error {
		if ino == 0 || ino > uint64(len(img.Inodes)) {
			return fmt.Errorf("rofs: %s: inode %d out of range", p, ino)
		}
		if seen[ino] {
			return fmt.Errorf("rofs: %s: inode %d reached twice", p, ino)
		}
		seen[ino] = true
		in := img.Inodes[ino-1]
		if in.Number != ino {
			return fmt.Errorf("rofs: %s: inode %d says it is %d", p, ino, in.Number)
		}
		switch in.Mode {
		case ModeDir:
			out[p] = Node{Mode: ModeDir}
			if in.DataOffset+in.Count > uint64(len(img.DirEntries)) {
				return fmt.Errorf("rofs: %s: entries %d+%d beyond the table", p, in.DataOffset, in.Count)
			}
			for _, d := range img.DirEntries[in.DataOffset : in.DataOffset+in.Count] {
				if d.Name == "" || d.Name == "." || d.Name == ".." || strings.ContainsAny(d.Name, "/\x00") {
					return fmt.Errorf("rofs: %s: bad name %q", p, d.Name)
				}
				if err := visit(path.Join(p, d.Name), d.Inode); err != nil {
					return err
				}
			}
		case ModeSymlink:
			if in.DataOffset >= uint64(len(img.Links)) || in.Count != 1 {
				return fmt.Errorf("rofs: %s: link %d (count %d) not in the table", p, in.DataOffset, in.Count)
			}
			out[p] = Node{Mode: ModeSymlink, Target: img.Links[in.DataOffset]}
		case ModeFile:
			start := in.DataOffset * BlockSize
			if in.DataOffset == 0 || start+in.Count > img.Superblock.TablesFirstBlock*BlockSize {
				return fmt.Errorf("rofs: %s: data at block %d (+%d bytes) is not between the superblock and the tables", p, in.DataOffset, in.Count)
			}
			out[p] = Node{Mode: ModeFile, Data: img.raw[start : start+in.Count]}
		default:
			return fmt.Errorf("rofs: %s: mode %o", p, in.Mode)
		}
		return nil
	}
	if len(img.Inodes) == 0 {
		return nil, errors.New("rofs: no inodes")
	}
	if err := visit("/", 1); err != nil {
		return nil, err
	}
	if len(seen) != len(img.Inodes) {
		return nil, fmt.Errorf("rofs: %d inodes, %d reachable from the root", len(img.Inodes), len(seen))
	}
	return out, nil
}

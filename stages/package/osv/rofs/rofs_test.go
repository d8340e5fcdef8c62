package rofs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
)

// parse and walk read back with Parse and Tree; walk flattens the tree
// to "dir", "link -> TARGET" or the file's content per path.
func parse(b []byte) (*Image, error) { return Parse(b) }

func (img *Image) walk() (map[string]string, error) {
	tree, err := img.Tree()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for p, n := range tree {
		switch n.Mode {
		case ModeDir:
			out[p] = "dir"
		case ModeSymlink:
			out[p] = "link -> " + n.Target
		default:
			out[p] = string(n.Data)
		}
	}
	return out, nil
}

func write(t *testing.T, f *FS) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := f.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n != f.Size() {
		t.Fatalf("WriteTo says %d bytes, wrote %d, Size says %d", n, buf.Len(), f.Size())
	}
	return buf.Bytes()
}

func TestWriteReadBack(t *testing.T) {
	host := filepath.Join(t.TempDir(), "big")
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes: 32 blocks minus a part
	if err := os.WriteFile(host, big, 0o644); err != nil {
		t.Fatal(err)
	}
	f := New()
	files := map[string]string{
		"/empty":          "",
		"/one":            "x",
		"/etc/hosts":      "127.0.0.1 localhost\n",
		"/a/b/c/block":    strings.Repeat("b", BlockSize),
		"/a/b/c/block+1":  strings.Repeat("c", BlockSize+1),
		"/a/b/c/block-1":  strings.Repeat("d", BlockSize-1),
		"/usr/lib/libz.1": "lib",
	}
	for p, c := range files {
		if err := f.AddBytes(p, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.AddHostFile("/app/big", host); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/dev", "/tmp", "/a/b/c"} {
		if err := f.Mkdir(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Symlink("/etc/mnttab", "/proc/mounts"); err != nil {
		t.Fatal(err)
	}
	if err := f.Symlink("/usr/lib/libz.so", "libz.1"); err != nil {
		t.Fatal(err)
	}
	b := write(t, f)
	img, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.walk()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/app/big": string(big), "/etc/mnttab": "link -> /proc/mounts", "/usr/lib/libz.so": "link -> libz.1"}
	for p, c := range files {
		want[p] = c
	}
	for _, d := range []string{"/", "/a", "/a/b", "/a/b/c", "/app", "/dev", "/etc", "/tmp", "/usr", "/usr/lib"} {
		want[d] = "dir"
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n%v\nwant\n%v", keys(got), keys(want))
		for p := range want {
			if got[p] != want[p] {
				t.Errorf("%s: %.40q, want %.40q", p, got[p], want[p])
			}
		}
	}

	// The superblock counts what the tables hold, the root is inode 1,
	// and the tables follow the data.
	sb := img.Superblock
	if sb.Inodes != uint64(len(want)) || sb.SymbolicLinks != 2 || sb.DirectoryEntries != uint64(len(want)-1) {
		t.Errorf("superblock %+v for %d paths", sb, len(want))
	}
	if img.Inodes[0].Mode != ModeDir || img.Inodes[0].Number != 1 {
		t.Errorf("inode 1 is %+v, want the root directory", img.Inodes[0])
	}
	var dataBlocks uint64
	for _, c := range files {
		dataBlocks += uint64(blocks(int64(len(c))))
	}
	dataBlocks += uint64(blocks(int64(len(big))))
	if sb.TablesFirstBlock != 1+dataBlocks {
		t.Errorf("tables start at block %d, want %d (superblock plus %d data blocks)", sb.TablesFirstBlock, 1+dataBlocks, dataBlocks)
	}
	// Files' data does not overlap and each starts on a block of its own.
	type span struct{ start, end uint64 }
	var spans []span
	for _, in := range img.Inodes {
		if in.Mode == ModeFile && in.Count > 0 {
			spans = append(spans, span{in.DataOffset, in.DataOffset + uint64(blocks(int64(in.Count)))})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			t.Errorf("file data overlaps: %v", spans)
		}
	}
	// Padding is zeros: the byte after a 1-byte file up to its block end.
	for _, in := range img.Inodes {
		if in.Mode == ModeFile && in.Count == 1 {
			for _, c := range b[in.DataOffset*BlockSize+1 : (in.DataOffset+1)*BlockSize] {
				if c != 0 {
					t.Fatal("a file's last block is not padded with zeros")
				}
			}
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestDeterministic(t *testing.T) {
	build := func(order []string) []byte {
		f := New()
		for _, p := range order {
			if err := f.AddBytes(p, []byte("content of "+p)); err != nil {
				t.Fatal(err)
			}
		}
		return write(t, f)
	}
	paths := []string{"/b/x", "/a", "/c/d/e", "/b/a", "/B"}
	first := build(paths)
	rev := append([]string(nil), paths...)
	sort.Sort(sort.Reverse(sort.StringSlice(rev)))
	if !bytes.Equal(first, build(rev)) {
		t.Error("the same tree added in another order gave other bytes")
	}
	// Children are in byte order: "B" before "a".
	img, err := parse(first)
	if err != nil {
		t.Fatal(err)
	}
	var root []string
	for _, d := range img.DirEntries[:img.Inodes[0].Count] {
		root = append(root, d.Name)
	}
	if want := []string{"B", "a", "b", "c"}; !reflect.DeepEqual(root, want) {
		t.Errorf("root entries %v, want %v", root, want)
	}
}

func TestEmptyFS(t *testing.T) {
	img, err := parse(write(t, New()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.walk()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]string{"/": "dir"}) || img.Superblock.TablesFirstBlock != 1 || img.Superblock.TablesBlocks != 1 {
		t.Errorf("empty file system: %v, superblock %+v", got, img.Superblock)
	}
}

func TestErrors(t *testing.T) {
	f := New()
	if err := f.AddBytes("/etc/hosts", nil); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", MaxName+1)
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"twice", func() error { return f.AddBytes("etc/hosts", []byte("x")) }, "/etc/hosts: file already exists"},
		{"under a file", func() error { return f.AddBytes("/etc/hosts/x", nil) }, "/etc/hosts is not a directory"},
		{"dir over a file", func() error { return f.Mkdir("/etc/hosts") }, "/etc/hosts is not a directory"},
		{"the root", func() error { return f.AddBytes("/", nil) }, "the root is a directory"},
		{"long name", func() error { return f.AddBytes("/"+long, nil) }, "ROFS names are at most 255"},
		{"NUL", func() error { return f.AddBytes("/a\x00b", nil) }, "NUL"},
		{"empty link", func() error { return f.Symlink("/l", "") }, "must be 1 to"},
		{"missing host file", func() error { return f.AddHostFile("/x", filepath.Join(t.TempDir(), "none")) }, "no such file"},
		{"host directory", func() error { return f.AddHostFile("/x", t.TempDir()) }, "not a regular file"},
	} {
		err := tc.do()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := f.AddBytes("/etc/hosts", nil); !errors.Is(err, ErrExist) {
		t.Errorf("adding twice: %v is not ErrExist", err)
	}
}

func TestHostFileChangedBeforeWrite(t *testing.T) {
	host := filepath.Join(t.TempDir(), "f")
	os.WriteFile(host, []byte("short"), 0o644)
	f := New()
	if err := f.AddHostFile("/f", host); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(host, []byte("longer now"), 0o644)
	if _, err := f.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Errorf("a host file that grew: %v", err)
	}
}

// OSv's own image scripts made the fixture's app/httpd-rofs-disk.img. The
// reader above reads it, and the same files written here read back the
// same, with the same counts in the superblock.
func TestOSvReferenceImage(t *testing.T) {
	dir := testenv.Fixture(t, "osv")
	disk, err := os.ReadFile(filepath.Join(dir, "app", "httpd-rofs-disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	// MBR partition entry #2 holds the file system.
	entry := disk[446+16 : 446+32]
	if entry[4] != 0x83 {
		t.Fatalf("partition #2 has type %#x", entry[4])
	}
	start := int64(binary.LittleEndian.Uint32(entry[8:])) * 512
	size := int64(binary.LittleEndian.Uint32(entry[12:])) * 512
	ref, err := parse(disk[start : start+size])
	if err != nil {
		t.Fatalf("OSv's image: %v", err)
	}
	want, err := ref.walk()
	if err != nil {
		t.Fatalf("OSv's image: %v", err)
	}
	for _, p := range []string{"/httpd", "/libenviron.so", "/etc/fstab", "/etc/hosts", "/etc/mnttab", "/usr/lib/libgcc_s.so.1", "/dev", "/proc", "/sys", "/tmp"} {
		if _, ok := want[p]; !ok {
			t.Errorf("OSv's image has no %s: %v", p, keys(want))
		}
	}
	f := New()
	for p, c := range want {
		switch {
		case c == "dir":
			err = f.Mkdir(p)
		case strings.HasPrefix(c, "link -> "):
			err = f.Symlink(p, strings.TrimPrefix(c, "link -> "))
		default:
			err = f.AddBytes(p, []byte(c))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mine, err := parse(write(t, f))
	if err != nil {
		t.Fatal(err)
	}
	got, err := mine.walk()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("written %v, OSv's %v", keys(got), keys(want))
	}
	a, b := ref.Superblock, mine.Superblock
	if a != b {
		t.Errorf("superblock %+v, OSv's %+v", b, a)
	}
}

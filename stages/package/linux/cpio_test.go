package linux

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// cpioEntry is one entry as read back by readCPIO.
type cpioEntry struct {
	Name                                     string
	Ino, Mode, UID, GID, Nlink, Mtime        uint32
	DevMajor, DevMinor, RDevMajor, RDevMinor uint32
	Data                                     []byte
}

// readCPIO is an independent newc reader for the tests: it checks the
// magic, the 4-byte alignment of names and data, and the trailer.
func readCPIO(b []byte) ([]cpioEntry, error) {
	var out []cpioEntry
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if off+cpioHeaderLen > len(b) {
			return nil, fmt.Errorf("truncated header at %d", off)
		}
		h := b[off : off+cpioHeaderLen]
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("bad magic %q at %d", h[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("field %d at %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		off += cpioHeaderLen
		nameLen, size := int(f[11]), int(f[6])
		if off+nameLen > len(b) || nameLen == 0 || b[off+nameLen-1] != 0 {
			return nil, fmt.Errorf("bad name at %d", off)
		}
		name := string(b[off : off+nameLen-1])
		off += nameLen
		align()
		if off+size > len(b) {
			return nil, fmt.Errorf("%s: truncated data", name)
		}
		data := b[off : off+size]
		off += size
		align()
		if name == cpioTrailer {
			if off != len(b) {
				return nil, fmt.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out, nil
		}
		out = append(out, cpioEntry{Name: name, Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], Nlink: f[4], Mtime: f[5],
			DevMajor: f[7], DevMinor: f[8], RDevMajor: f[9], RDevMinor: f[10], Data: data})
	}
}

func TestCPIORoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	steps := []error{
		w.dir("etc", 0o755),
		w.file("etc/a", 0o644, 1, bytes.NewReader([]byte("x"))),
		w.file("etc/bb", 0o755, 6, bytes.NewReader([]byte("123456"))),
		w.file("empty", 0o644, 0, bytes.NewReader(nil)),
		w.symlink("lnk", "etc/a"),
		w.charDev("console", 0o600, 5, 1),
		w.close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not a multiple of 4", buf.Len())
	}
	got, err := readCPIO(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		mode  uint32
		nlink uint32
		data  string
	}{
		{"etc", modeDir | 0o755, 2, ""},
		{"etc/a", modeFile | 0o644, 1, "x"},
		{"etc/bb", modeFile | 0o755, 1, "123456"},
		{"empty", modeFile | 0o644, 1, ""},
		{"lnk", modeLink | 0o777, 1, "etc/a"},
		{"console", modeChar | 0o600, 1, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Mode != w.mode || g.Nlink != w.nlink || string(g.Data) != w.data {
			t.Errorf("entry %d: %s %o nlink %d %q; want %s %o nlink %d %q", i, g.Name, g.Mode, g.Nlink, g.Data, w.name, w.mode, w.nlink, w.data)
		}
		if g.Ino != uint32(i+1) || g.Mtime != 0 || g.UID != 0 || g.GID != 0 {
			t.Errorf("entry %s: ino %d mtime %d uid %d gid %d", g.Name, g.Ino, g.Mtime, g.UID, g.GID)
		}
	}
	if c := got[5]; c.RDevMajor != 5 || c.RDevMinor != 1 {
		t.Errorf("console rdev %d:%d", c.RDevMajor, c.RDevMinor)
	}
}

func TestCPIOErrors(t *testing.T) {
	w := newCPIOWriter(io.Discard)
	if err := w.file("/abs", 0o644, 0, bytes.NewReader(nil)); err == nil {
		t.Error("absolute name accepted")
	}
	if err := w.file("short", 0o644, 10, bytes.NewReader([]byte("abc"))); err == nil {
		t.Error("short file accepted")
	}
	if err := w.file("huge", 0o644, 1<<32, bytes.NewReader(nil)); err == nil {
		t.Error("4 GiB file accepted")
	}
}

func TestGzipInitramfsDeterministic(t *testing.T) {
	tr := newTree()
	if err := tr.put("/a/b", &node{kind: kindFile, perm: 0o644, data: []byte("hello")}, false); err != nil {
		t.Fatal(err)
	}
	var one, two bytes.Buffer
	for _, b := range []*bytes.Buffer{&one, &two} {
		if err := writeInitramfs(b, tr, CompressionGzip); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Fatal("gzip output differs between runs")
	}
	zr, err := gzip.NewReader(&one)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q time %v", zr.Name, zr.ModTime)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	es, err := readCPIO(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Name != "a" || es[1].Name != "a/b" || string(es[1].Data) != "hello" {
		t.Errorf("entries %+v", es)
	}
}

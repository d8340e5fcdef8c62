package vsphere

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rawDisk is a disk of random and zero regions whose size is not a whole
// number of grains (64 KiB).
func rawDisk(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	chunk := func(n int, random bool) {
		p := make([]byte, n)
		if random {
			_, _ = rand.Read(p)
		}
		b.Write(p)
	}
	chunk(1<<20, true)
	chunk(3<<20, false)
	chunk(12345, true)
	chunk(512*40-12345%512, false)
	chunk(70000-70000%512, true)
	p := filepath.Join(dir, "raw.img")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b.Bytes()
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img missing: run scripts/install-deps (apt-get install qemu-utils)")
	}
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func readStream(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	r, err := newStreamReader(f, fi.Size())
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(r)
	if err == nil && int64(len(out)) != r.Size() {
		t.Errorf("read %d bytes, Size says %d", len(out), r.Size())
	}
	return out, err
}

// qemu-img's streamOptimized VMDK (what the format stage writes) reads
// back as exactly the raw disk it was made from.
func TestStreamReaderGivesTheRawDiskOfQemuImgsVMDK(t *testing.T) {
	dir := t.TempDir()
	raw, want := rawDisk(t, dir)
	vmdk := filepath.Join(dir, "disk.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk)
	got, err := readStream(t, vmdk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes differ from the %d-byte raw disk", len(got), len(want))
	}
}

// writeStreamGDAtEnd writes raw as a streamOptimized extent the way a
// streaming writer must (VMware's own, ovftool): the header says the grain
// directory is at the end, the tables and directory follow the grains as
// marked metadata, then the footer and the end-of-stream marker.
func writeStreamGDAtEnd(t *testing.T, path string, raw []byte) {
	t.Helper()
	const grain = 128
	capacity := uint64(len(raw)) / sectorSize
	header := func(gd uint64) []byte {
		h := make([]byte, sectorSize)
		binary.LittleEndian.PutUint32(h[0:], sparseMagic)
		binary.LittleEndian.PutUint32(h[4:], 3)
		binary.LittleEndian.PutUint32(h[8:], flagCompress|1<<17|1)
		binary.LittleEndian.PutUint64(h[12:], capacity)
		binary.LittleEndian.PutUint64(h[20:], grain)
		binary.LittleEndian.PutUint64(h[28:], 1)  // descriptor at sector 1
		binary.LittleEndian.PutUint64(h[36:], 20) // of 20 sectors
		binary.LittleEndian.PutUint32(h[44:], 512)
		binary.LittleEndian.PutUint64(h[56:], gd)
		binary.LittleEndian.PutUint64(h[64:], 128)
		copy(h[73:], "\n \r\n")
		binary.LittleEndian.PutUint16(h[77:], 1)
		return h
	}
	marker := func(sectors uint64, typ uint32) []byte {
		m := make([]byte, sectorSize)
		binary.LittleEndian.PutUint64(m[0:], sectors)
		binary.LittleEndian.PutUint32(m[12:], typ)
		return m
	}
	var out bytes.Buffer
	out.Write(header(gdAtEnd))
	desc := make([]byte, 20*sectorSize)
	copy(desc, fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\nRW %d SPARSE \"stream.vmdk\"\n", capacity))
	out.Write(desc)
	out.Write(make([]byte, (128-21)*sectorSize))
	grains := (capacity + grain - 1) / grain
	gt := make([]byte, ((grains+511)/512)*512*4)
	for g := uint64(0); g < grains; g++ {
		data := raw[g*grain*sectorSize : min((g+1)*grain*sectorSize, uint64(len(raw)))]
		if bytes.Count(data, []byte{0}) == len(data) {
			continue
		}
		var c bytes.Buffer
		zw := zlib.NewWriter(&c)
		zw.Write(data)
		zw.Close()
		binary.LittleEndian.PutUint32(gt[g*4:], uint32(out.Len()/sectorSize))
		var m [12]byte
		binary.LittleEndian.PutUint64(m[0:], g*grain)
		binary.LittleEndian.PutUint32(m[8:], uint32(c.Len()))
		out.Write(m[:])
		out.Write(c.Bytes())
		out.Write(make([]byte, (sectorSize-out.Len()%sectorSize)%sectorSize))
	}
	var gd []byte
	for tbl := 0; tbl*2048 < len(gt); tbl++ {
		out.Write(marker(4, 1))
		gd = binary.LittleEndian.AppendUint32(gd, uint32(out.Len()/sectorSize))
		out.Write(gt[tbl*2048 : (tbl+1)*2048])
	}
	out.Write(marker(1, 2))
	gdAt := uint64(out.Len() / sectorSize)
	out.Write(gd)
	out.Write(make([]byte, (sectorSize-out.Len()%sectorSize)%sectorSize))
	out.Write(marker(1, 3))
	out.Write(header(gdAt))
	out.Write(marker(0, 0))
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStreamReaderFollowsTheFooterToTheGrainDirectory(t *testing.T) {
	dir := t.TempDir()
	_, want := rawDisk(t, dir)
	vmdk := filepath.Join(dir, "stream.vmdk")
	writeStreamGDAtEnd(t, vmdk, want)
	got, err := readStream(t, vmdk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		for i := range want {
			if i >= len(got) || got[i] != want[i] {
				t.Fatalf("decoded %d bytes differ from the %d-byte raw disk at %d", len(got), len(want), i)
			}
		}
		t.Fatalf("decoded %d bytes, want %d", len(got), len(want))
	}
	// qemu-img reads it the same way: the writer above is a real stream.
	back := filepath.Join(dir, "back.img")
	qemuImg(t, "convert", "-f", "vmdk", "-O", "raw", vmdk, back)
	if b, _ := os.ReadFile(back); !bytes.Equal(b, want) {
		t.Fatal("qemu-img reads the test's stream differently")
	}
}

func TestStreamReaderRejectsWhatIsNotAStream(t *testing.T) {
	dir := t.TempDir()
	raw, _ := rawDisk(t, dir)
	sparse := filepath.Join(dir, "sparse.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicSparse", raw, sparse)
	if _, err := readStream(t, sparse); err == nil || !strings.Contains(err.Error(), "not a streamOptimized VMDK") {
		t.Errorf("monolithicSparse: err = %v", err)
	}
	if _, err := readStream(t, raw); err == nil || !strings.Contains(err.Error(), "not a sparse VMDK") {
		t.Errorf("raw disk: err = %v", err)
	}
	stream := filepath.Join(dir, "s.vmdk")
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, stream)
	b, _ := os.ReadFile(stream)
	// Corrupt the first grain's compressed bytes (after the 12-byte
	// marker of the first data sector).
	f, _ := os.Open(stream)
	fi, _ := f.Stat()
	r, err := newStreamReader(f, fi.Size())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	at := int(r.gtes[0])*sectorSize + 20
	for i := at; i < at+64; i++ {
		b[i] ^= 0x5a
	}
	bad := filepath.Join(dir, "bad.vmdk")
	os.WriteFile(bad, b, 0o644)
	if _, err := readStream(t, bad); err == nil || !strings.Contains(err.Error(), "grain 0") {
		t.Errorf("corrupt grain: err = %v", err)
	}
	os.WriteFile(bad, b[:len(b)/3], 0o644)
	if _, err := readStream(t, bad); err == nil {
		t.Error("a truncated VMDK read without error")
	}
}

package format

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestCRC32ZeroExtendMatchesHashing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int64{0, 1, 2, 3, 7, 8, 255, 256, 257, 4096, 65535, 1 << 20, 3<<20 + 17} {
		prefix := make([]byte, r.IntN(100))
		for i := range prefix {
			prefix[i] = byte(r.Uint32())
		}
		want := crc32.ChecksumIEEE(append(append([]byte(nil), prefix...), make([]byte, n)...))
		if got := crc32ZeroExtend(crc32.ChecksumIEEE(prefix), n); got != want {
			t.Errorf("%d bytes then %d zeros: %08x, want %08x", len(prefix), n, got, want)
		}
	}
}

// zeroGzipCase is a sequence of data and zero runs; it returns what was
// written as plain bytes.
func writeCase(t *testing.T, w io.Writer, parts []any) []byte {
	t.Helper()
	z := newZeroGzip(w)
	var plain bytes.Buffer
	for _, p := range parts {
		switch v := p.(type) {
		case []byte:
			if _, err := z.Write(v); err != nil {
				t.Fatal(err)
			}
			plain.Write(v)
		case int:
			if err := z.Zeros(int64(v)); err != nil {
				t.Fatal(err)
			}
			plain.Write(make([]byte, v))
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return plain.Bytes()
}

// TestZeroGzipDecodes checks streams of data and zero runs with three
// independent decoders: Go's compress/gzip, GNU gzip and zlib (Python's).
func TestZeroGzipDecodes(t *testing.T) {
	random := func(n int, seed uint64) []byte {
		r := rand.New(rand.NewPCG(seed, seed))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32() % 7) // compressible, not trivial
		}
		return b
	}
	cases := map[string][]any{
		"empty":            {},
		"zeros only":       {1 << 20},
		"one zero":         {1},
		"short runs":       {2, 3, 258, 259, 260, 516},
		"data only":        {random(100000, 1)},
		"data then zeros":  {random(5000, 2), 1<<20 + 5},
		"zeros then data":  {77777, random(3000, 3)},
		"interleaved":      {random(10, 4), 1, random(1, 5), 300, random(70000, 6), 1 << 16, random(512, 7), 3},
		"data ending zero": {random(64, 8), 1 << 18, random(64, 9)},
	}
	gz, _ := exec.LookPath("gzip")
	py, _ := exec.LookPath("python3")
	for name, parts := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			plain := writeCase(t, &out, parts)
			zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("compress/gzip: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("compress/gzip gives %d bytes, want %d (or different bytes)", len(got), len(plain))
			}
			file := filepath.Join(t.TempDir(), "x.gz")
			os.WriteFile(file, out.Bytes(), 0o644)
			sum := sha256.Sum256(plain)
			if gz != "" {
				b, err := exec.Command(gz, "-dc", file).Output()
				if err != nil || sha256.Sum256(b) != sum {
					t.Errorf("GNU gzip -dc: %v, %d bytes", err, len(b))
				}
			}
			if py != "" {
				// wbits 16+15: a gzip member; the decoder checks CRC and size.
				b, err := exec.Command(py, "-c", "import sys,zlib; d=zlib.decompressobj(31); o=d.decompress(open(sys.argv[1],'rb').read()); assert d.eof and not d.unused_data; sys.stdout.buffer.write(o)", file).Output()
				if err != nil || sha256.Sum256(b) != sum {
					t.Errorf("zlib: %v, %d bytes", err, len(b))
				}
			}
		})
	}
}

func TestZeroRunsAreSmall(t *testing.T) {
	var out bytes.Buffer
	z := newZeroGzip(&out)
	if err := z.Zeros(1 << 30); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	// 2 bits per 258 bytes: about 1 MiB per GiB.
	if out.Len() > 1<<30/258/4+200 {
		t.Errorf("a GiB of zeros compressed to %d bytes", out.Len())
	}
	zr, err := gzip.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, zr); n != 1<<30 || err != nil {
		t.Errorf("decompressed %d bytes, %v", n, err)
	}
}

// TestGCETarIsArchiveTarOfTheDisk: the archive decompresses to exactly
// what archive/tar writes for disk.raw, for a disk with data, holes and
// zero blocks written as data; and writing it twice gives the same bytes,
// whether the zeros are holes or written out.
func TestGCETarIsArchiveTarOfTheDisk(t *testing.T) {
	dir := t.TempDir()
	// Any size works; GCE's whole GiB is Convert's (unpackGCE checks it).
	const size = 64 << 20
	r := rand.New(rand.NewPCG(3, 4))
	chunk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	layout := []struct {
		off  int64
		data []byte
	}{
		{0, chunk(512)},
		{5 << 20, chunk(3 << 20)},
		{9<<20 + 100, make([]byte, 2<<20)}, // zeros written as data
		{12<<20 + 1, chunk(1000)},          // not chunk-aligned
		{size - 4096, chunk(4096)},         // at the very end
	}
	sparse := filepath.Join(dir, "sparse.raw")
	dense := filepath.Join(dir, "dense.raw")
	f, _ := os.Create(sparse)
	for _, l := range layout {
		f.WriteAt(l.data, l.off)
	}
	f.Truncate(size)
	f.Close()
	// The same bytes with the first 16 MiB written out in full.
	in, _ := os.ReadFile(sparse)
	df, _ := os.Create(dense)
	df.Write(in[:16<<20])
	df.Truncate(size)
	df.WriteAt(in[size-4096:], size-4096)
	df.Close()

	var want bytes.Buffer
	tw := tar.NewWriter(&want)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: gceFile, Mode: 0o644, Size: size, ModTime: gceTime, Format: tar.FormatGNU})
	tw.Write(in)
	tw.Close()
	wantSum := crc32.Checksum(want.Bytes(), castagnoli)
	wantLen := want.Len()
	in = nil
	want.Reset()

	var outs [][]byte
	for _, p := range []string{sparse, dense, sparse} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		start := time.Now()
		if err := writeGCETar(context.Background(), &out, f, size); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes in %s", filepath.Base(p), out.Len(), time.Since(start))
		f.Close()
		zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		h := crc32.New(castagnoli)
		n, err := io.Copy(h, zr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Sum32() != wantSum || n != int64(wantLen) {
			t.Errorf("%s: the archive does not decompress to archive/tar's stream of the disk", p)
		}
		outs = append(outs, out.Bytes())
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], outs[2]) {
		t.Errorf("the same disk gave different archives (sparse %d, dense %d, sparse again %d bytes)", len(outs[0]), len(outs[1]), len(outs[2]))
	}
	// GNU tar reads it: one disk.raw.
	if tarBin, err := exec.LookPath("tar"); err == nil {
		file := filepath.Join(dir, "disk.tar.gz")
		os.WriteFile(file, outs[0], 0o644)
		b, err := exec.Command(tarBin, "-tvzf", file).CombinedOutput()
		if err != nil || !bytes.Contains(b, []byte(" 67108864 ")) || !bytes.HasSuffix(bytes.TrimSpace(b), []byte(" disk.raw")) || bytes.Count(b, []byte("\n")) != 1 {
			t.Errorf("tar -tvzf: %v\n%s", err, b)
		}
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func TestGCETarStopsOnCancel(t *testing.T) {
	f, _ := os.Create(filepath.Join(t.TempDir(), "d.raw"))
	f.Truncate(1 << 30)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := writeGCETar(ctx, io.Discard, f, 1<<30); err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

var gceOnly = flag.Bool("gce-only", false, "measure only writing the gce tarball of a 1 GiB disk (the current writer against the previous one)")

// benchGCE times writing the gce tarball of examples/hello's raw disk
// (padded to 1 GiB) with format.Convert against the way it was written
// before: archive/tar through compress/gzip at BestSpeed over the whole
// padded disk, as stages/package/format/gce.go did until the zero runs
// were encoded as deflate blocks of their own.
func benchGCE(e *env) error {
	cmd := exec.Command(e.bin, "build", "--format", "raw", "--json")
	cmd.Dir = e.project
	cmd.Env = append(os.Environ(), "UNIKFILE_CACHE_DIR="+e.cache, "UNIKFILE_STATE_DIR="+e.state, "UNIKFILE_KERNEL="+e.kernel)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build --format raw: %v\n%s", err, out)
	}
	rawDir, err := e.imageDirArgs("--format", "raw")
	if err != nil {
		return err
	}
	raw, err := pack.ReadImage(rawDir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var after, before []time.Duration
	var size, oldSize int64
	for i := 0; i < *runs; i++ {
		out := filepath.Join(e.tmp, fmt.Sprintf("gce-%d", i))
		os.MkdirAll(out, 0o755)
		start := time.Now()
		img, err := format.Convert(ctx, raw, rawDir, format.GCE, out)
		if err != nil {
			return err
		}
		after = append(after, time.Since(start))
		size = img.Size
		os.RemoveAll(out)

		start = time.Now()
		if oldSize, err = oldGCE(filepath.Join(rawDir, raw.Disk), filepath.Join(e.tmp, "old.tar.gz")); err != nil {
			return err
		}
		before = append(before, time.Since(start))
	}
	fmt.Printf("gce tarball of examples/hello's %d MiB raw disk padded to 1 GiB: %.1f MiB now, %.1f MiB before\n", raw.Size>>20, float64(size)/(1<<20), float64(oldSize)/(1<<20))
	report("gce tarball, 1 GiB disk: format.Convert", median(after), "the previous writer (tar + gzip -1 of the GiB)", median(before))
	return nil
}

// oldGCE writes the archive the way it was written before: the raw disk
// copied into a sparse file of 1 GiB, archive/tar through compress/gzip
// at BestSpeed over all of it (no GPT move: the hello disk boots by BIOS).
func oldGCE(raw, out string) (int64, error) {
	padded := out + ".raw"
	defer os.Remove(padded)
	src, err := os.Open(raw)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	tmp, err := os.Create(padded)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(tmp, src); err != nil {
		return 0, err
	}
	const gib = 1 << 30
	if err := tmp.Truncate(gib); err != nil {
		return 0, err
	}
	tmp.Seek(0, io.SeekStart)
	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "disk.raw", Mode: 0o644, Size: gib, ModTime: time.Unix(315532800, 0), Format: tar.FormatGNU})
	if err == nil {
		_, err = io.Copy(tw, tmp)
	}
	err = errors.Join(err, tw.Close(), zw.Close(), bw.Flush(), f.Sync(), tmp.Close())
	fi, _ := f.Stat()
	return fi.Size(), err
}

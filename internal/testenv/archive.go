package testenv

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FixtureArchive returns the folder that archive (a .tar.zst file in the
// fixture folder name, e.g. the IncludeOS SDK) unpacks into, unpacking it
// once per machine into the user's cache (~/.cache/unikfile-test), under
// the archive's digest: later tests and runs reuse it, a changed archive
// gets a folder of its own. It skips t as Fixture does when the fixture is
// absent.
func FixtureArchive(t testing.TB, name, archive string) string {
	t.Helper()
	src := filepath.Join(Fixture(t, name), archive)
	dir, err := unpackOnce(src, name)
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return dir
}

// UnpackFixture is FixtureArchive for callers that are not tests (bench):
// an error says when the fixture is absent.
func UnpackFixture(name, archive string) (string, error) {
	root := os.Getenv(FixturesEnv)
	if root == "" {
		return "", fmt.Errorf("the %s fixture is needed and %s is not set", name, FixturesEnv)
	}
	src, err := filepath.Abs(filepath.Join(root, name, archive))
	if err != nil {
		return "", err
	}
	return unpackOnce(src, name)
}

// unpackOnce unpacks src into the cache unless an earlier call did.
func unpackOnce(src, name string) (string, error) {
	sum, err := fileSHA256(src)
	if err != nil {
		return "", err
	}
	root, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for the unpacked fixture: %w", err)
	}
	base := strings.TrimSuffix(filepath.Base(src), ".tar.zst")
	dir := filepath.Join(root, "unikfile-test", "fixtures", name, base+"-"+sum[:16])
	if _, err := os.Stat(dir); err == nil {
		return dir, nil // renamed into place whole
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+base+".partial-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // finds nothing after the rename
	if err := untarZstd(src, tmp); err != nil {
		return "", fmt.Errorf("unpack %s: %w", src, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil // another test process won the race
		}
		return "", err
	}
	return dir, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// untarZstd unpacks a .tar.zst file into dir: regular files (with their
// modes), folders, symbolic links and hard links, nothing outside dir.
func untarZstd(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("entry %q leaves the folder", h.Name)
		}
		p := filepath.Join(dir, rel)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777|0o200)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			target := filepath.Join(dir, filepath.Clean(filepath.FromSlash(h.Linkname)))
			if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
				return fmt.Errorf("link %q points outside the folder", h.Name)
			}
			if err := os.Link(target, p); err != nil {
				return err
			}
		}
	}
}

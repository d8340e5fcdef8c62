package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/unikfile/unikfile/ignore"
)

// Key builds a cache key from named parts. Parts are length-prefixed, so
// ("ab","c") and ("a","bc") differ.
type Key struct {
	parts []string
}

// Add appends a named part.
func (k *Key) Add(name, value string) *Key {
	k.parts = append(k.parts, name, value)
	return k
}

// Sum returns the key as hex.
func (k *Key) Sum() string {
	h := sha256.New()
	for _, p := range k.parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TreeDigest digests the files of dir that m does not ignore: their paths,
// modes (executable bit, symlink) and contents. Symlinks are digested by
// target, not followed.
func TreeDigest(dir string, m *ignore.Matcher) (string, error) {
	return TreeDigestWith(dir, m, nil)
}

// TreeDigestWith is TreeDigest taking files' content digests from sc
// where their metadata shows them unchanged; sc may be nil.
func TreeDigestWith(dir string, m *ignore.Matcher, sc *StatCache) (string, error) {
	type file struct {
		rel, path string
		mode      fs.FileMode
	}
	var files []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			sc.Saw(path)
			return nil
		}
		if m != nil && m.Match(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			sc.Saw(path) // a file added or removed changes its folder
			return nil
		}
		files = append(files, file{rel, path, d.Type()})
		return nil
	})
	if err != nil {
		return "", err
	}
	// The ignore files decide what is digested; they may ignore themselves.
	sc.Saw(filepath.Join(dir, ignore.FileName))
	sc.Saw(filepath.Join(dir, ".dockerignore"))
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	h := sha256.New()
	for _, f := range files {
		switch {
		case f.mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(f.path)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "L %q %q\n", f.rel, target)
		case f.mode.IsRegular():
			fi, err := os.Stat(f.path)
			if err != nil {
				return "", err
			}
			fh, err := sc.FileDigest(f.path)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "F %q %v %s\n", f.rel, fi.Mode().Perm()&0o111 != 0, fh)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FileDigest returns the sha256 of a file's contents as hex.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
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

package buildkit

import (
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/ignore"
)

// excludes lists what unikfile's ignore rules leave out of dir, as exact
// BuildKit exclude patterns: the top-most ignored files and folders found
// by the same walk that digests the source for the cache key. BuildKit's
// pattern syntax (anchored at the root, no directory-only rules) differs
// from the ignore files', so the rules are not translated: their result is.
func excludes(dir string) ([]string, error) {
	m, err := ignore.Load(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if m.Match(rel, d.IsDir()) {
			out = append(out, escapePattern(rel))
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out, err
}

// escapePattern makes a path match itself only in BuildKit's patterns.
func escapePattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

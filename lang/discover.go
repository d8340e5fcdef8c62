package lang

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/unikfile/unikfile/ignore"
)

// skipDirs are never searched for Unikfiles: version control and
// unikfile's own folders. Folders the root's .unikignore (or
// .dockerignore) ignores are skipped too.
var skipDirs = map[string]bool{".git": true, ".hg": true, ".svn": true, ".unikfile": true}

// Discover returns the paths of every Unikfile in root and the folders
// below it, in lexical order, without reading them. It does not follow
// symlinks to folders, and skips version control folders and the folders
// root's ignore files name.
func Discover(root string) ([]string, error) {
	return DiscoverSeeing(root, nil)
}

// DiscoverSeeing is Discover calling saw (if not nil) with every folder it
// lists and the ignore files it reads, so that a caller can tell later
// whether another search could find something else.
func DiscoverSeeing(root string, saw func(path string)) ([]string, error) {
	if saw == nil {
		saw = func(string) {}
	}
	saw(filepath.Join(root, ignore.FileName))
	saw(filepath.Join(root, ".dockerignore"))
	m, err := ignore.Load(root)
	if err != nil {
		return nil, err
	}
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("looking for Unikfiles: %w", err)
		}
		if d.IsDir() {
			if path == root {
				saw(path)
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			if skipDirs[d.Name()] || m.Match(filepath.ToSlash(rel), true) {
				return filepath.SkipDir
			}
			saw(path)
			return nil
		}
		if d.Name() == FileName && d.Type().IsRegular() {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

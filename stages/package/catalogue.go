package pack

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/unikfile/unikfile/cache"
)

// Entry is one image in the cache.
type Entry struct {
	Image *Image
	// Dir is the image directory; Size is what its files take on disk.
	Dir     string
	Size    int64
	Created time.Time
}

// Images lists the images in cs, newest first. Entries that are not
// complete images, or that vanish while they are listed (another command
// pruning or refilling them), are left out.
func Images(cs *cache.Store) ([]Entry, error) {
	keys, err := cs.Entries("images")
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, k := range keys {
		dir, ok := cs.Verify("images", k) // a listing is not a use
		if !ok {
			continue
		}
		img, err := ReadImage(dir)
		if err != nil {
			continue
		}
		fi, err := os.Stat(dir)
		if err != nil {
			continue
		}
		out = append(out, Entry{Image: img, Dir: dir, Size: dirSize(dir), Created: fi.ModTime()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// resolveSource turns an app's source attribute into an absolute path and
// checks that it is a directory inside the project directory dir, both as
// written and after following symlinks: a build context must not reach
// outside the project.
func resolveSource(dir, raw string, rng hcl.Range) (string, *hcl.Diagnostic) {
	p := raw
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	p = filepath.Clean(p)
	outside := func(detail string) (string, *hcl.Diagnostic) {
		return "", errorAt(rng, "Source outside the project",
			detail+" An app's source must be inside the directory of its Unikfile.")
	}
	if !within(dir, p) {
		return outside(fmt.Sprintf("source %q is %s, which is outside the project directory %s.", raw, p, dir))
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", errorAt(rng, "Source directory not found",
			fmt.Sprintf("source %q: %s does not exist. Create it, or fix the path (it is relative to the Unikfile's directory).", raw, p))
	case err != nil:
		return "", errorAt(rng, "Cannot read source directory", fmt.Sprintf("source %q: %s.", raw, err))
	case !fi.IsDir():
		return "", errorAt(rng, "Source is not a directory",
			fmt.Sprintf("source %q: %s is a file; source names the directory the app is built from.", raw, p))
	}
	realDir, err1 := filepath.EvalSymlinks(dir)
	realP, err2 := filepath.EvalSymlinks(p)
	if err := errors.Join(err1, err2); err != nil {
		return "", errorAt(rng, "Cannot read source directory", fmt.Sprintf("source %q: %s.", raw, err))
	}
	if !within(realDir, realP) {
		return outside(fmt.Sprintf("source %q resolves through a symlink to %s, which is outside the project directory %s.", raw, realP, realDir))
	}
	return p, nil
}

// within reports whether path p is base or inside it. Both must be clean
// and absolute.
func within(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

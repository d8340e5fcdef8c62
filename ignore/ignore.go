package ignore

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FileName is the per-source ignore file.
const FileName = ".unikignore"

// Builtin patterns always apply: version control, editor temp files, the
// folders unikfile itself writes (so that a build never changes its inputs),
// and the Unikfile at the root of a build context: it describes the build
// and is never read by it, so editing it must not recompile.
var Builtin = []string{
	".git/", ".hg/", ".svn/", ".unikfile/", "/Unikfile",
	"*~", ".*.swp", ".*.swx", ".*.swo", "4913", ".#*", "#*#", ".DS_Store",
}

type rule struct {
	negate   bool
	dirOnly  bool
	anchored bool     // pattern contains a slash: match against the whole path
	segs     []string // pattern split on "/"
	line     int
}

// Matcher matches slash-separated paths relative to the tree root.
type Matcher struct {
	rules []rule
}

// New compiles patterns in gitignore syntax (later patterns win; "!" negates;
// a trailing "/" matches directories only; a slash elsewhere anchors the
// pattern to the root; "**" matches any number of path segments).
func New(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for i, p := range patterns {
		if err := m.add(p, i+1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Matcher) add(p string, line int) error {
	p = strings.TrimRight(p, " \t\r")
	if p == "" || strings.HasPrefix(p, "#") {
		return nil
	}
	var r rule
	r.line = line
	if strings.HasPrefix(p, "!") {
		r.negate = true
		p = p[1:]
	}
	p = strings.TrimPrefix(p, `\`)
	if strings.HasSuffix(p, "/") {
		r.dirOnly = true
		p = strings.TrimRight(p, "/")
	}
	if strings.Contains(p, "/") {
		r.anchored = true
		p = strings.TrimPrefix(p, "/")
	}
	if p == "" {
		return nil
	}
	r.segs = strings.Split(p, "/")
	for _, s := range r.segs {
		if _, err := path.Match(s, "x"); err != nil {
			return fmt.Errorf("line %d: bad pattern %q: %w", line, p, err)
		}
	}
	m.rules = append(m.rules, r)
	return nil
}

// Load returns a matcher with the built-in rules plus dir/.unikignore and
// dir/.dockerignore when present.
func Load(dir string) (*Matcher, error) {
	pats := append([]string(nil), Builtin...)
	for _, name := range []string{".dockerignore", FileName} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			pats = append(pats, sc.Text())
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	m, err := New(pats)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return m, nil
}

// Match reports whether rel (slash-separated, relative to the root) is
// ignored. Callers walking a tree skip ignored directories entirely.
func (m *Matcher) Match(rel string, isDir bool) bool {
	rel = strings.Trim(filepath.ToSlash(rel), "/")
	if rel == "" || rel == "." {
		return false
	}
	parts := strings.Split(rel, "/")
	ignored := false
	for _, r := range m.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.matches(parts) {
			ignored = !r.negate
		}
	}
	return ignored
}

func (r rule) matches(parts []string) bool {
	if r.anchored {
		return matchSegs(r.segs, parts)
	}
	// An unanchored pattern matches the last path element.
	ok, _ := path.Match(r.segs[0], parts[len(parts)-1])
	return ok
}

func matchSegs(pat, parts []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(parts); i++ {
				if matchSegs(rest, parts[i:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], parts[0]); !ok {
			return false
		}
		pat, parts = pat[1:], parts[1:]
	}
	return len(parts) == 0
}

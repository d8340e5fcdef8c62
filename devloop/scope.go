package devloop

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/unikfile/unikfile/ignore"
	"github.com/unikfile/unikfile/lang"
)

// scope knows which paths of a project matter to which app. It is built
// once per loaded project and never changed, so the watcher's goroutine can
// ask it while the loop builds the next one.
type scope struct {
	file    string   // the Unikfile
	exclude []string // folders unikfile writes to (cache, state), when inside the project
	apps    []appScope
}

type appScope struct {
	name, source string
	ignore       *ignore.Matcher
}

func newScope(p *lang.Project, apps []string, exclude []string) (*scope, error) {
	s := &scope{file: p.File}
	for _, e := range exclude {
		if e != "" {
			s.exclude = append(s.exclude, filepath.Clean(e))
		}
	}
	for _, name := range apps {
		a := p.App(name)
		m, err := ignore.Load(a.Source)
		if err != nil {
			return nil, err
		}
		s.apps = append(s.apps, appScope{name: name, source: a.Source, ignore: m})
	}
	return s, nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

func (s *scope) excluded(path string) bool {
	for _, e := range s.exclude {
		if within(path, e) {
			return true
		}
	}
	return false
}

// ignored is the watcher's filter: a directory is watched when it holds an
// app's source or lies in one without being ignored there; a file is
// reported when it is the Unikfile or an input of some app.
func (s *scope) ignored(path string, isDir bool) bool {
	if s.excluded(path) {
		return true
	}
	if !isDir && path == s.file {
		return false
	}
	for _, a := range s.apps {
		if isDir && within(a.source, path) {
			return false
		}
		if within(path, a.source) {
			rel, _ := filepath.Rel(a.source, path)
			if !a.ignore.Match(rel, isDir) {
				return false
			}
		}
	}
	return true
}

// affected returns the apps for which path is an input. A directory (after
// a removal, or the root after an event overflow) affects every app whose
// source is in it.
func (s *scope) affected(path string) []string {
	var out []string
	for _, a := range s.apps {
		switch {
		case within(a.source, path) && a.source != path:
			out = append(out, a.name)
		case within(path, a.source):
			rel, _ := filepath.Rel(a.source, path)
			if rel == "." || !ignoredBelow(a.ignore, rel) {
				out = append(out, a.name)
			}
		}
	}
	return out
}

// ignoredBelow reports whether rel or one of its parent folders is ignored
// (a walk of the source never enters an ignored folder).
func ignoredBelow(m *ignore.Matcher, rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i := 1; i < len(parts); i++ {
		if m.Match(strings.Join(parts[:i], "/"), true) {
			return true
		}
	}
	return m.Match(rel, false)
}

// ignoreFile reports whether path is an ignore file of an app's source:
// editing it changes what is watched.
func (s *scope) ignoreFile(path string) bool {
	base := filepath.Base(path)
	if base != ignore.FileName && base != ".dockerignore" {
		return false
	}
	return slices.ContainsFunc(s.apps, func(a appScope) bool { return filepath.Dir(path) == a.source })
}

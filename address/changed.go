package address

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/ignore"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
)

const gitHint = "--changed-since asks git what changed: install git (apt-get install git)"

// ChangedFiles returns the absolute paths of the files that differ between
// revision rev and the working tree of the git repository holding dir
// (`git diff --name-only REV`: committed, staged and unstaged changes,
// deletions included), plus untracked files that are not ignored.
func ChangedFiles(ctx context.Context, dir, rev string) ([]string, error) {
	git := func(args ...string) (string, error) {
		res, err := run.Run(ctx, run.Cmd{Path: "git", Args: args, Dir: dir, Hint: gitHint})
		if err != nil {
			return "", err
		}
		return string(res.Stdout), nil
	}
	top, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		return nil, err
	}
	top = strings.TrimSpace(top)
	if real, err := filepath.EvalSymlinks(top); err == nil {
		top = real
	}
	diff, err := git("-c", "core.quotePath=false", "diff", "--name-only", "--no-renames", rev, "--")
	if err != nil {
		return nil, err
	}
	untracked, err := git("-c", "core.quotePath=false", "ls-files", "--others", "--exclude-standard", "--full-name", top)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(diff+"\n"+untracked, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, filepath.Join(top, filepath.FromSlash(l)))
		}
	}
	return out, nil
}

// Affected returns which of apps the changed files (absolute paths) touch:
// an app whose source folder, or a folder outside it that its build reads
// (Go's local replace directives), holds a changed file that the folder's
// ignore files do not ignore; and every app of a Unikfile that changed.
func Affected(apps []lang.ProjectApp, changed []string) (map[*lang.App]bool, error) {
	out := map[*lang.App]bool{}
	matchers := map[string]*ignore.Matcher{}
	touches := func(dir, f string) (bool, error) {
		rel, err := filepath.Rel(dir, f)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return false, nil
		}
		m, ok := matchers[dir]
		if !ok {
			if m, err = ignore.Load(dir); err != nil {
				return false, err
			}
			matchers[dir] = m
		}
		return !ignored(m, filepath.ToSlash(rel)), nil
	}
	for _, pa := range apps {
		dirs := []string{pa.App.Source}
		if l, err := compile.Lookup(pa.App.Language); err == nil {
			extra, err := l.ExtraInputs(pa.App)
			if err != nil {
				return nil, err
			}
			dirs = append(dirs, extra...)
		}
	files:
		for _, f := range changed {
			if f == pa.Project.File {
				out[pa.App] = true
				break
			}
			for _, dir := range dirs {
				hit, err := touches(dir, f)
				if err != nil {
					return nil, err
				}
				if hit {
					out[pa.App] = true
					break files
				}
			}
		}
	}
	return out, nil
}

// ignored reports whether rel or one of its parent folders is ignored.
func ignored(m *ignore.Matcher, rel string) bool {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		if m.Match(strings.Join(parts[:i], "/"), true) {
			return true
		}
	}
	return m.Match(rel, false)
}

// ChangedApps keeps the apps that the changes since rev (git, in dir)
// affect, as Affected decides.
func ChangedApps(ctx context.Context, dir string, apps []lang.ProjectApp, rev string) ([]lang.ProjectApp, error) {
	files, err := ChangedFiles(ctx, dir, rev)
	if err != nil {
		return nil, err
	}
	return keepAffected(apps, files)
}

func keepAffected(apps []lang.ProjectApp, files []string) ([]lang.ProjectApp, error) {
	affected, err := Affected(apps, files)
	if err != nil {
		return nil, err
	}
	var out []lang.ProjectApp
	for _, pa := range apps {
		if affected[pa.App] {
			out = append(out, pa)
		}
	}
	return out, nil
}

// ChangedTargets keeps the targets of w that run an app (their own or one
// of another Unikfile) that the changes since rev affect.
func ChangedTargets(ctx context.Context, w *lang.Workspace, dir string, targets []lang.ProjectTarget, rev string) ([]lang.ProjectTarget, error) {
	files, err := ChangedFiles(ctx, dir, rev)
	if err != nil {
		return nil, err
	}
	return targetsAffected(w, targets, files)
}

func targetsAffected(w *lang.Workspace, targets []lang.ProjectTarget, files []string) ([]lang.ProjectTarget, error) {
	var apps []lang.ProjectApp
	for _, pt := range targets {
		apps = append(apps, w.TargetApps(pt.Project, pt.Target)...)
	}
	affected, err := Affected(apps, files)
	if err != nil {
		return nil, err
	}
	var out []lang.ProjectTarget
	for _, pt := range targets {
		for _, pa := range w.TargetApps(pt.Project, pt.Target) {
			if affected[pa.App] {
				out = append(out, pt)
				break
			}
		}
	}
	return out, nil
}

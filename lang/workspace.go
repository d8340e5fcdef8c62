package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Workspace is a set of loaded Unikfiles whose targets may run each
// other's apps (apps = ["services/api:api"]).
type Workspace struct {
	// Root is the absolute directory that addresses are relative to.
	Root string
	// Projects are sorted by directory. They include the Unikfiles loaded
	// only because a target referenced one of their apps.
	Projects []*Project
}

// ProjectApp is an app with the project that declares it.
type ProjectApp struct {
	Project *Project
	App     *App
}

// ProjectTarget is a target with the project that declares it.
type ProjectTarget struct {
	Project *Project
	Target  *Target
}

// Project returns the project whose Unikfile is in dir, or nil.
func (w *Workspace) Project(dir string) *Project {
	for _, p := range w.Projects {
		if p.Dir == dir {
			return p
		}
	}
	return nil
}

// Rel is p's directory relative to Root, slash-separated: "." for Root
// itself, "services/api" below it. A project outside Root keeps its
// absolute path.
func (w *Workspace) Rel(p *Project) string {
	rel, err := filepath.Rel(w.Root, p.Dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(p.Dir)
	}
	return filepath.ToSlash(rel)
}

// TargetApps returns the apps target t of p runs: its own apps, then the
// ones it imports from other Unikfiles. LoadWorkspace has checked that
// every reference resolves.
func (w *Workspace) TargetApps(p *Project, t *Target) []ProjectApp {
	var out []ProjectApp
	for _, name := range t.Apps {
		out = append(out, ProjectApp{p, p.App(name)})
	}
	for _, ref := range t.Imports {
		if q := w.Project(ref.Dir); q != nil && q.App(ref.Name) != nil {
			out = append(out, ProjectApp{q, q.App(ref.Name)})
		}
	}
	return out
}

// LoadWorkspace loads the Unikfiles at files, and the Unikfiles their
// targets reference, and checks every reference between them. It reports
// the diagnostics of every file, not only the first file's.
//
// With one file, opts.Vars are given to it as Load would (a --var it does
// not declare is an error); with several, each file gets the variables it
// declares, and a --var that no file declares is an error. Referenced
// Unikfiles get the variables they declare.
//
// Diagnostics name files relative to the working directory when they are
// below it. The Workspace is nil if and only if the diagnostics hold an
// error.
func LoadWorkspace(root string, files []string, opts Options) (*Workspace, Sources, hcl.Diagnostics) {
	sources := Sources{}
	var diags hcl.Diagnostics
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, sources, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot resolve the workspace root", Detail: err.Error()}}
	}
	w := &Workspace{Root: absRoot}
	loaded := map[string]bool{} // directories whose Unikfile was read, loaded or not
	// unreadable holds, for referenced directories whose Unikfile could
	// not be found or read, why.
	unreadable := map[string]error{}
	declaredAnywhere := map[string]bool{}
	load := func(path string, all bool) *Project {
		abs, err := filepath.Abs(path)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot resolve a Unikfile's path", Detail: err.Error()})
			return nil
		}
		abs = filepath.Join(realPath(filepath.Dir(abs)), filepath.Base(abs))
		loaded[filepath.Dir(abs)] = true
		o := opts
		if !all && len(opts.Vars) > 0 {
			// Which --vars this file gets: the ones it declares. With no
			// --var there is nothing to give, and the file is parsed once.
			o.Vars = map[string]string{}
			for _, name := range declaredVariables(abs) {
				declaredAnywhere[name] = true
				if v, ok := opts.Vars[name]; ok {
					o.Vars[name] = v
				}
			}
		}
		p, src, d := load(displayName(abs), o, true)
		for k, v := range src {
			sources[k] = v
		}
		diags = append(diags, d...)
		if p != nil {
			w.Projects = append(w.Projects, p)
		}
		return p
	}
	for _, f := range files {
		load(f, len(files) == 1)
	}
	if len(files) > 1 {
		for _, name := range sortedKeys(opts.Vars) {
			if !declaredAnywhere[name] {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Undeclared variable %q given with --var", name),
					Detail:   fmt.Sprintf("None of the %d Unikfiles declares a variable named %q. Fix the name, or declare it with a variable %q block.", len(files), name, name),
				})
			}
		}
	}

	// Load what targets reference, transitively, then check the references.
	for i := 0; i < len(w.Projects); i++ {
		for _, t := range w.Projects[i].Targets {
			for _, ref := range t.Imports {
				if loaded[ref.Dir] {
					continue
				}
				loaded[ref.Dir] = true
				path, err := FindFile(ref.Dir)
				if err != nil {
					unreadable[ref.Dir] = err
					continue
				}
				if _, err := ReadFile(path); err != nil {
					unreadable[ref.Dir] = err // reported at the reference
					continue
				}
				load(path, false)
			}
		}
	}
	sort.Slice(w.Projects, func(i, j int) bool { return w.Projects[i].Dir < w.Projects[j].Dir })
	for i := 1; i < len(w.Projects); i++ {
		if a, b := w.Projects[i-1], w.Projects[i]; a.Dir == b.Dir {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Two Unikfiles in one folder",
				Detail: fmt.Sprintf("%s and %s are both loaded, but addresses and node names tell Unikfiles apart by their folder. Load one of them (--file names the Unikfile of -C's folder; ./... finds files named %s).",
					displayName(a.File), displayName(b.File), FileName),
			})
		}
	}
	for _, p := range w.Projects {
		for _, t := range p.Targets {
			diags = append(diags, w.checkImports(p, t, unreadable)...)
		}
	}
	sortDiagnostics(diags)
	attachSnippets(diags, sources)
	if diags.HasErrors() {
		return nil, sources, diags
	}
	return w, sources, diags
}

// checkImports checks that every app target t imports is declared where
// the reference says, that the target's apps have distinct names, and that
// no two of them share a host port.
func (w *Workspace) checkImports(p *Project, t *Target, unreadable map[string]error) hcl.Diagnostics {
	if len(t.Imports) == 0 {
		return nil
	}
	var diags hcl.Diagnostics
	names := map[string]string{} // app name -> where it comes from
	for _, n := range t.Apps {
		names[n] = "app." + n
	}
	resolved := true
	for _, ref := range t.Imports {
		q := w.Project(ref.Dir)
		if q == nil {
			file := filepath.Join(ref.Dir, FileName)
			_, err := os.Stat(file)
			switch why := unreadable[ref.Dir]; {
			case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
				diags = append(diags, errorAt(ref.Range, "Reference to a missing Unikfile",
					fmt.Sprintf("%q names app %q of %s, which does not exist. DIR in \"DIR:APP\" is a folder relative to %s.", ref.String(), ref.Name, displayName(file), displayName(p.File))))
			case why != nil:
				diags = append(diags, errorAt(ref.Range, "Reference to an unreadable Unikfile",
					fmt.Sprintf("%q names app %q of %s, which cannot be loaded: %v.", ref.String(), ref.Name, displayName(file), why)))
			} // otherwise that Unikfile's own errors were reported
			resolved = false
			continue
		}
		a := q.App(ref.Name)
		if a == nil {
			var declaredNames []string
			where := displayName(q.File) + ":1:1"
			for i, qa := range q.Apps {
				declaredNames = append(declaredNames, qa.Name)
				if i == 0 {
					where = posString(qa.Range)
				}
			}
			diags = append(diags, errorAt(ref.Range, "Reference to undeclared app",
				fmt.Sprintf("%q names app %q of %s, but that Unikfile (%s) declares no app named %q; %s.%s",
					ref.String(), ref.Name, displayName(q.File), where, ref.Name, declared("apps", declaredNames), suggest(ref.Name, declaredNames))))
			resolved = false
			continue
		}
		if from, dup := names[ref.Name]; dup {
			diags = append(diags, errorAt(ref.Range, "Two apps with one name in a target",
				fmt.Sprintf("Target %q already runs an app named %q (%s); instances are named after their app, so a target's apps need distinct names. Declared at %s.", t.Name, ref.Name, from, posString(a.Range))))
			resolved = false
			continue
		}
		names[ref.Name] = ref.String()
	}
	decode := p.decoders[t]
	if decode == nil {
		return diags
	}
	if !resolved {
		return append(diags, decode(ownPorts(t, p), true)...)
	}
	// Now that every app is known, the provider decodes its block.
	var apps []AppPorts
	for _, pa := range w.TargetApps(p, t) {
		apps = append(apps, AppPorts{Name: pa.App.Name, Ports: pa.App.Ports})
	}
	return append(diags, decode(apps, false)...)
}

// displayName is path relative to the working directory when it is below
// it (what a user typed, and what editors turn into links), else path.
func displayName(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}

// declaredVariables returns the names of the variable blocks of the
// Unikfile at path, or nothing if it cannot be read or parsed (Load then
// reports why).
func declaredVariables(path string) []string {
	src, err := ReadFile(path)
	if err != nil || checkNesting(src, path).HasErrors() {
		return nil
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() || f == nil {
		return nil
	}
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "variable", LabelNames: []string{"name"}}}})
	var names []string
	for _, b := range content.Blocks {
		names = append(names, b.Labels[0])
	}
	return names
}

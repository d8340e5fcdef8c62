package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// FileName is the name of the file unikfile reads in a project directory.
const FileName = "Unikfile"

// Options are the inputs to Load besides the Unikfile itself.
type Options struct {
	// Vars are values given with --var name=value. They win over the
	// environment and over defaults, and must name declared variables.
	Vars map[string]string
	// Environ is where UNIKFILE_VAR_name=value overrides are read from;
	// nil means os.Environ(). Unlike --var, a name the Unikfile does not
	// declare is ignored: the environment is shared by every project.
	Environ []string
	// Catalog is what the stages implement (stages/registry.Catalog());
	// required.
	Catalog *Catalog
}

// Sources holds the text of every file Load read (the Unikfile, and the
// text of --var values parsed as HCL), keyed by the file name that
// diagnostic ranges carry. WriteDiagnostics and DiagnosticsJSON use it to
// show source lines.
type Sources map[string]*hcl.File

// FindFile returns the path of the Unikfile in dir, or an error saying how
// to create one.
func FindFile(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	path := filepath.Join(dir, FileName)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no %s in %s; create one with `unikfile init`", FileName, dir)
	case err != nil:
		return "", fmt.Errorf("find %s: %w", FileName, err)
	case fi.IsDir():
		return "", fmt.Errorf("%s is a directory, not a Unikfile", path)
	}
	return path, nil
}

// rootSchema is what a Unikfile may hold at the top level.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "app", LabelNames: []string{"name"}},
		{Type: "target", LabelNames: []string{"name"}},
		{Type: "build"},
	},
}

// Load reads, evaluates and validates the Unikfile at path.
//
// Ranges in the returned diagnostics carry path as given (cleaned), so a
// caller that passes "Unikfile" gets messages about "Unikfile:12:3". The
// diagnostics are in source order and carry their source lines for
// DiagnosticsJSON. The Project is nil if and only if the diagnostics hold
// an error. Sources is never nil, and holds whatever could be read even
// when loading failed; pass it to WriteDiagnostics.
//
// Evaluation runs in a fixed order: parse; resolve variables (--var, then
// UNIKFILE_VAR_name, then default); evaluate locals in dependency order;
// then decode apps, targets and the build block with var., local. and app.
// in scope and the go-cty standard library as functions.
func Load(path string, opts Options) (*Project, Sources, hcl.Diagnostics) {
	return load(path, opts, false)
}

// load is Load; with deferImports, the provider blocks of targets that
// run apps of other Unikfiles are left for LoadWorkspace to decode.
func load(path string, opts Options, deferImports bool) (*Project, Sources, hcl.Diagnostics) {
	name := filepath.Clean(path)
	if opts.Catalog == nil {
		return nil, Sources{}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No catalog", Detail: "lang.Load needs Options.Catalog (stages/registry.Catalog())."}}
	}
	sources := Sources{}
	src, err := ReadFile(path)
	if err != nil {
		return nil, sources, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read Unikfile",
			Detail:   err.Error(),
		}}
	}
	if diags := checkNesting(src, name); diags.HasErrors() {
		sources[name] = &hcl.File{Body: hcl.EmptyBody(), Bytes: src}
		attachSnippets(diags, sources)
		return nil, sources, diags
	}
	file, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if file == nil {
		file = &hcl.File{Body: hcl.EmptyBody(), Bytes: src}
	}
	sources[name] = file
	if diags.HasErrors() {
		attachSnippets(diags, sources)
		return nil, sources, diags
	}

	absFile, err := filepath.Abs(path)
	if err != nil {
		return nil, sources, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot resolve the Unikfile's directory",
			Detail:   err.Error(),
		})
	}
	p := &Project{File: absFile, Dir: filepath.Dir(absFile), Build: Build{Executor: "local"}}

	content, d := file.Body.Content(rootSchema)
	diags = append(diags, d...)

	var varBlocks, localBlocks, appBlocks, targetBlocks, buildBlocks []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			varBlocks = append(varBlocks, b)
		case "locals":
			localBlocks = append(localBlocks, b)
		case "app":
			appBlocks = append(appBlocks, b)
		case "target":
			targetBlocks = append(targetBlocks, b)
		case "build":
			buildBlocks = append(buildBlocks, b)
		}
	}

	s := newScope(opts.Catalog, p.Dir)
	s.vars, d = decodeVariables(varBlocks, opts, sources)
	diags = append(diags, d...)

	appBlocks, d = uniqueBlocks("app", appBlocks)
	diags = append(diags, d...)
	for _, b := range appBlocks {
		s.apps = append(s.apps, b.Labels[0])
	}
	targetBlocks, d = uniqueBlocks("target", targetBlocks)
	diags = append(diags, d...)

	diags = append(diags, s.evalLocals(localBlocks)...)

	for _, b := range appBlocks {
		app, d := decodeApp(b, s, p.Dir)
		diags = append(diags, d...)
		p.Apps = append(p.Apps, app)
	}
	for _, b := range targetBlocks {
		t, d := decodeTarget(b, s, p, deferImports)
		diags = append(diags, d...)
		p.Targets = append(p.Targets, t)
	}
	for i, b := range buildBlocks {
		if i > 0 {
			diags = append(diags, errorAt(b.DefRange, "Duplicate build block",
				fmt.Sprintf("A build block was already declared at %s; a Unikfile has at most one.", posString(buildBlocks[0].DefRange))))
			continue
		}
		p.Build, d = decodeBuild(b, s)
		diags = append(diags, d...)
	}

	sortDiagnostics(diags)
	attachSnippets(diags, sources)
	if diags.HasErrors() {
		return nil, sources, diags
	}
	return p, sources, diags
}

// sortDiagnostics puts diags in reading order: those without a position
// (about --var values, say) first, then by file and offset. Evaluation
// runs in phases, but a reader fixes a file from top to bottom.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// uniqueBlocks validates the name labels of blocks of one kind and drops
// the blocks whose name is invalid or was already declared.
func uniqueBlocks(kind string, blocks []*hcl.Block) ([]*hcl.Block, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	seen := map[string]*hcl.Block{}
	var out []*hcl.Block
	for _, b := range blocks {
		name := b.Labels[0]
		if !validName(name) {
			diags = append(diags, errorAt(b.LabelRanges[0], fmt.Sprintf("Invalid %s name", kind),
				fmt.Sprintf("%q is not a valid %s name: a name starts with a letter, holds only letters, digits, '_' and '-', and has at most %d characters (it names instances and hosts).", shorten(name), kind, MaxNameLength)))
			continue
		}
		if first, ok := seen[name]; ok {
			diags = append(diags, errorAt(b.DefRange, fmt.Sprintf("Duplicate %s %q", kind, name),
				fmt.Sprintf("%s %s named %q was already declared at %s. Names must be unique.", article(kind), kind, name, posString(first.DefRange))))
			continue
		}
		seen[name] = b
		out = append(out, b)
	}
	return out, diags
}

// validName reports whether name can name an app or a target: it becomes
// part of references (app.NAME), file names and instance names.
func validName(name string) bool {
	if name == "" || len(name) > MaxNameLength {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// shorten cuts s for a message when it is long.
func shorten(s string) string {
	if len(s) > 80 {
		return s[:60] + "…" + fmt.Sprintf(" (%d characters)", len(s))
	}
	return s
}

// article returns "An" or "A", whichever goes before word.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "An"
	}
	return "A"
}

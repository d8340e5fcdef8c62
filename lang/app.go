package lang

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// appAttributes are the attributes of an app block; its blocks are the
// settings blocks of the bases (appSchema).
var appAttributes = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source"},
		{Name: "language", Required: true},
		{Name: "base"},
		{Name: "main"},
		{Name: "args"},
		{Name: "env"},
		{Name: "ports"},
		{Name: "memory"},
		{Name: "builder"},
	},
}

// appSchema is an app block: its attributes, and one optional block per
// base that takes settings.
func appSchema(b *hcl.Block, s *scope) *hcl.BodySchema {
	blocks := append(settingsBlocks(s.cat.Bases), unbuiltBlock(b, s, "base", func(n string) bool { return s.cat.Bases[n] != nil })...)
	return &hcl.BodySchema{Attributes: appAttributes.Attributes, Blocks: blocks}
}

// defaultMemoryMiB is an app's memory when the Unikfile does not say.
const defaultMemoryMiB = 256

// decodeApp decodes one `app` block. dir is the project directory that
// source (and paths in the base's block) are relative to.
func decodeApp(b *hcl.Block, s *scope, dir string) (*App, hcl.Diagnostics) {
	app := &App{
		Name:      b.Labels[0],
		Source:    dir,
		Base:      s.cat.DefaultBase,
		Args:      []string{},
		Env:       map[string]string{},
		Ports:     []int{},
		MemoryMiB: defaultMemoryMiB,
		Range:     b.DefRange,
	}
	content, diags := b.Body.Content(appSchema(b, s))
	d := &decoder{s: s, attrs: content.Attributes}

	if src, attr := d.str("source", "."); attr != nil {
		if p, diag := resolveSource(dir, src, attr.Expr.Range()); diag != nil {
			d.diags = append(d.diags, diag)
		} else {
			app.Source = p
		}
	}
	app.Language = d.choice("language", "", s.cat.Languages)
	base := decodeBase(d, app, s.cat)
	var mainAttr *hcl.Attribute
	app.Main, mainAttr = d.str("main", "")
	if m := path.Clean(filepath.ToSlash(app.Main)); app.Main != "" && (path.IsAbs(m) || filepath.IsAbs(app.Main) || m == ".." || strings.HasPrefix(m, "../")) {
		d.errorf(mainAttr.Expr.Range(), "Entry point outside the source",
			"main = %q leaves the app's source: it names a package, file or class inside the source folder, relative to it (e.g. \"./cmd/api\" or \"bin/server\").", app.Main)
	}
	app.Args = d.strList("args")
	if attr := d.attrs["args"]; attr != nil {
		for i, a := range app.Args {
			if strings.ContainsRune(a, 0) {
				d.errorf(attr.Expr.Range(), "Invalid argument", "Element %d of args holds a NUL character, which a program's arguments cannot carry.", i)
			}
		}
	}
	app.Builder, _ = d.str("builder", "")

	envs, _ := d.pairs("env", cty.String, true)
	for _, p := range envs {
		if !validEnvName(p.key) {
			d.errorf(p.keyRng, "Invalid environment variable name",
				"%q cannot name an environment variable: use letters, digits and '_', not starting with a digit.", p.key)
			continue
		}
		if strings.ContainsRune(p.val.AsString(), 0) {
			d.errorf(p.valRng, "Invalid environment value", "The value of %s holds a NUL character, which an environment variable cannot carry.", p.key)
			continue
		}
		app.Env[p.key] = p.val.AsString()
	}

	ports, _ := d.list("ports", cty.Number)
	seen := map[int]hcl.Range{}
	for _, it := range ports {
		n, ok := port(it.val)
		if !ok {
			d.errorf(it.rng, "Invalid port", "%s is not a port: ports are whole numbers from 1 to 65535.", numberString(it.val))
			continue
		}
		if first, dup := seen[n]; dup {
			d.errorf(it.rng, "Duplicate port", "Port %d is already listed at %s.", n, posString(first))
			continue
		}
		seen[n] = it.rng
		app.Ports = append(app.Ports, n)
	}

	// memory is a size with a unit; a bare number gets the message that
	// says which unit to add, and "" is not a way to leave it unset.
	if v, attr, ok := d.value("memory", cty.DynamicPseudoType); ok {
		var mem string
		switch v.Type() {
		case cty.Number:
			mem = v.AsBigFloat().Text('f', -1)
		case cty.String:
			mem = v.AsString()
		}
		if mib, err := parseMemory(mem); err != nil {
			d.errorf(attr.Expr.Range(), "Invalid memory size", "%s.", err)
		} else {
			app.MemoryMiB, app.MemorySet = mib, true
		}
	}

	for _, blk := range content.Blocks {
		if blk.Type != app.Base && base != nil {
			d.errorf(blk.DefRange, fmt.Sprintf("A %s block in an app of base %s", blk.Type, app.Base),
				"A %s block holds settings of base %q, and this app's base is %q; remove the block, or set base = %q.", blk.Type, blk.Type, app.Base, blk.Type)
		}
	}
	if base != nil {
		blk, bd := decodeSettingsBlock(app.Base, "an app", content.Blocks, base.Schema(), s)
		diags = append(diags, bd...)
		app.BaseSettings = base.Decode(blk, app)
		d.diags = append(d.diags, blk.diags...)
	}
	return app, append(diags, d.diags...)
}

// decodeBase reads the app's base (the catalog's default when absent) and
// checks that it runs the app's language. It returns nil when the base is
// not one the catalog has.
func decodeBase(d *decoder, app *App, c *Catalog) BaseSchema {
	v, attr, ok := d.value("base", cty.String)
	if ok {
		app.Base = v.AsString()
	}
	base := c.Bases[app.Base]
	if base == nil {
		if attr != nil && ok {
			notBuilt(d, attr, "base", app.Base, sortedKeys(c.Bases))
		}
		return nil
	}
	if langs := base.Languages(); langs != nil && app.Language != "" && !slices.Contains(langs, app.Language) {
		rng := app.Range
		if attr != nil {
			rng = attr.Expr.Range()
		}
		d.errorf(rng, fmt.Sprintf("Base %s does not run language %s", app.Base, app.Language),
			"Apps on base %q are written in %s; this app's language is %q. Choose another base for it (e.g. base = %q).",
			app.Base, strings.Join(langs, ", "), app.Language, c.baseFor(app.Language))
	}
	return base
}

// baseFor is a base that runs language, to suggest: the default base when
// it does, else the first by name that does.
func (c *Catalog) baseFor(language string) string {
	runs := func(name string) bool {
		b := c.Bases[name]
		return b != nil && (b.Languages() == nil || slices.Contains(b.Languages(), language))
	}
	if runs(c.DefaultBase) {
		return c.DefaultBase
	}
	for _, name := range sortedKeys(c.Bases) {
		if runs(name) {
			return name
		}
	}
	return c.DefaultBase
}

// validEnvName reports whether name can name an environment variable.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

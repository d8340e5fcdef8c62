package lang

import (
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var appSchema = &hcl.BodySchema{
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
	Blocks: []hcl.BlockHeaderSchema{{Type: "linux"}},
}

var linuxSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "kernel"},
		{Name: "cmdline"},
	},
}

// defaultMemoryMiB is an app's memory when the Unikfile does not say.
const defaultMemoryMiB = 256

// decodeApp decodes one `app` block. dir is the project directory that
// source and linux.kernel are relative to.
func decodeApp(b *hcl.Block, s *scope, dir string) (*App, hcl.Diagnostics) {
	app := &App{
		Name:      b.Labels[0],
		Source:    dir,
		Base:      "linux",
		Args:      []string{},
		Env:       map[string]string{},
		Ports:     []int{},
		MemoryMiB: defaultMemoryMiB,
		Range:     b.DefRange,
	}
	content, diags := b.Body.Content(appSchema)
	d := &decoder{s: s, attrs: content.Attributes}

	if src, attr := d.str("source", "."); attr != nil {
		if p, diag := resolveSource(dir, src, attr.Expr.Range()); diag != nil {
			d.diags = append(d.diags, diag)
		} else {
			app.Source = p
		}
	}
	app.Language = d.choice("language", "", languages)
	app.Base = d.choice("base", "linux", bases)
	app.Main, _ = d.str("main", "")
	app.Args = d.strList("args")
	app.Builder, _ = d.str("builder", "")

	envs, _ := d.pairs("env", cty.String)
	for _, p := range envs {
		if !validEnvName(p.key) {
			d.errorf(p.keyRng, "Invalid environment variable name",
				"%q cannot name an environment variable: use letters, digits and '_', not starting with a digit.", p.key)
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

	if mem, attr := d.str("memory", ""); attr != nil && mem != "" {
		if mib, err := parseMemory(mem); err != nil {
			d.errorf(attr.Expr.Range(), "Invalid memory size", "%s.", err)
		} else {
			app.MemoryMiB = mib
			app.MemorySet = true
		}
	}

	for i, lb := range content.Blocks {
		if i > 0 {
			d.errorf(lb.DefRange, "Duplicate linux block",
				"A linux block was already declared at %s; an app has at most one.", posString(content.Blocks[0].DefRange))
			continue
		}
		lc, ld := lb.Body.Content(linuxSchema)
		diags = append(diags, ld...)
		sub := &decoder{s: s, attrs: lc.Attributes}
		if k, _ := sub.str("kernel", ""); k != "" {
			if k != KernelMinimal && !filepath.IsAbs(k) {
				k = filepath.Join(dir, k)
			}
			app.Linux.Kernel = filepath.Clean(k)
		}
		app.Linux.Cmdline, _ = sub.str("cmdline", "")
		d.diags = append(d.diags, sub.diags...)
	}
	return app, append(diags, d.diags...)
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

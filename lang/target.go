package lang

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// targetAttributes are the attributes of a target block; its blocks are
// the settings blocks of the providers (targetSchema).
var targetAttributes = []hcl.AttributeSchema{
	{Name: "provider", Required: true},
	{Name: "apps", Required: true},
	{Name: "format"},
	{Name: "boot"},
}

// targetSchema is a target block: its attributes, a settings block per
// provider that takes one, and a block named after the target's provider
// when that is not built (the provider's error says all there is to say).
func targetSchema(b *hcl.Block, s *scope) *hcl.BodySchema {
	blocks := append(settingsBlocks(s.cat.Providers), unbuiltBlock(b, s, "provider", func(n string) bool { return s.cat.Providers[n] != nil })...)
	return &hcl.BodySchema{Attributes: targetAttributes, Blocks: blocks}
}

// decodeTarget decodes one `target` block. p holds the apps decoded so
// far, which the provider checks its settings against. With deferImports,
// a target that runs apps of other Unikfiles keeps its provider block for
// LoadWorkspace to decode once those apps are known (decodeSettings).
func decodeTarget(b *hcl.Block, s *scope, p *Project, deferImports bool) (*Target, hcl.Diagnostics) {
	t := &Target{
		Name:  b.Labels[0],
		Apps:  []string{},
		Range: b.DefRange,
	}
	content, diags := b.Body.Content(targetSchema(b, s))
	d := &decoder{s: s, attrs: content.Attributes}
	t.Apps, t.Imports = decodeTargetApps(d, s, p.Dir)
	prov := decodeProvider(d, t, s.cat)
	for _, blk := range content.Blocks {
		if blk.Type != t.Provider && t.Provider != "" {
			d.errorf(blk.DefRange, fmt.Sprintf("A %s block in a target of provider %s", blk.Type, t.Provider),
				"A %s block holds settings of provider %q, and this target's provider is %q; remove the block, or set provider = %q.", blk.Type, blk.Type, t.Provider, blk.Type)
		}
	}
	if prov != nil {
		decodeFormat(d, t, prov)
		decode := func(apps []AppPorts, partial bool) hcl.Diagnostics {
			blk, bd := decodeSettingsBlock(t.Provider, "a target", content.Blocks, prov.Schema(), s)
			t.Settings = prov.Decode(blk, TargetInfo{Name: t.Name, Apps: apps, Partial: partial, Range: t.Range})
			bd = append(bd, blk.diags...)
			if !partial {
				bd = append(bd, checkHostPorts(t, apps)...)
			}
			return bd
		}
		if p.decoders == nil {
			p.decoders = map[*Target]func([]AppPorts, bool) hcl.Diagnostics{}
		}
		p.decoders[t] = decode
		if !deferImports || len(t.Imports) == 0 {
			diags = append(diags, decode(ownPorts(t, p), len(t.Imports) > 0)...)
		}
	}
	return t, append(diags, d.diags...)
}

// decodeProvider reads the target's provider; nil when it is not one the
// catalog has.
func decodeProvider(d *decoder, t *Target, c *Catalog) ProviderSchema {
	v, attr, ok := d.value("provider", cty.String)
	if !ok {
		return nil
	}
	t.Provider = v.AsString()
	prov := c.Providers[t.Provider]
	if prov == nil {
		notBuilt(d, attr, "provider", t.Provider, sortedKeys(c.Providers))
	}
	return prov
}

// ownPorts lists the target's own apps (those of its Unikfile) with their
// ports.
func ownPorts(t *Target, p *Project) []AppPorts {
	var out []AppPorts
	for _, name := range t.Apps {
		if a := p.App(name); a != nil {
			out = append(out, AppPorts{Name: name, Ports: a.Ports})
		}
	}
	return out
}

// decodeTargetApps reads the apps attribute: references such as app.api
// (or app names as strings) and apps of other Unikfiles as "DIR:APP"
// strings, at least one, no duplicates.
func decodeTargetApps(d *decoder, s *scope, dir string) ([]string, []AppRef) {
	names := []string{}
	var imports []AppRef
	before := len(d.diags)
	items, attr := d.list("apps", cty.DynamicPseudoType)
	example := "app.NAME"
	if len(s.apps) > 0 {
		example = "app." + s.apps[0]
	}
	seen := map[string]hcl.Range{}
	for _, it := range items {
		var name string
		switch ty := it.val.Type(); {
		case ty == cty.String && strings.Contains(it.val.AsString(), ":"):
			ref, ok := parseAppRef(d, it, dir)
			if !ok {
				continue
			}
			if first, dup := seen[ref.String()]; dup {
				d.errorf(it.rng, "Duplicate app", "App %q is already listed at %s.", ref.String(), posString(first))
				continue
			}
			seen[ref.String()] = it.rng
			imports = append(imports, ref)
			continue
		case ty == cty.String:
			name = it.val.AsString()
		case ty.IsObjectType() && ty.HasAttribute("name") && ty.AttributeType("name") == cty.String:
			name = it.val.GetAttr("name").AsString()
		default:
			d.errorf(it.rng, "Invalid app reference",
				"apps lists apps by reference, such as %s; this is a %s.", example, ty.FriendlyName())
			continue
		}
		if !contains(s.apps, name) {
			d.errorf(it.rng, "Reference to undeclared app", "There is no app named %q; %s.%s",
				name, declared("apps", s.apps), suggest(name, s.apps))
			continue
		}
		if first, dup := seen[name]; dup {
			d.errorf(it.rng, "Duplicate app", "App %q is already listed at %s.", name, posString(first))
			continue
		}
		seen[name] = it.rng
		names = append(names, name)
	}
	if attr != nil && len(names)+len(imports) == 0 && len(d.diags) == before {
		d.errorf(attr.Expr.Range(), "No apps", "A target runs at least one app: list them, e.g. apps = [%s].", example)
	}
	return names, imports
}

// parseAppRef reads "DIR:APP", a reference to app APP of the Unikfile in
// DIR (relative to this Unikfile's directory, slash-separated).
func parseAppRef(d *decoder, it item, dir string) (AppRef, bool) {
	raw := it.val.AsString()
	path, name, _ := strings.Cut(raw, ":")
	bad := func(why string) (AppRef, bool) {
		d.errorf(it.rng, "Invalid app reference",
			"%q %s. An app of another Unikfile is written \"DIR:APP\", DIR relative to this Unikfile's directory, e.g. \"services/api:api\".", raw, why)
		return AppRef{}, false
	}
	switch {
	case path == "":
		return bad("has no directory before the colon; for an app of this Unikfile write app.NAME")
	case strings.HasPrefix(path, "/") || filepath.IsAbs(path):
		return bad("names an absolute directory")
	case strings.Contains(name, ":"):
		return bad("has more than one colon")
	case !validName(name):
		return bad(fmt.Sprintf("does not end in an app name (%q is not one)", name))
	}
	abs := filepath.Clean(filepath.Join(dir, filepath.FromSlash(path)))
	// A folder reached through a symlink is the folder it points to: one
	// Unikfile has one identity, whichever path names it.
	realDir, realAbs := realPath(dir), realPath(abs)
	if abs == filepath.Clean(dir) || realAbs == realDir {
		return bad("names this Unikfile's own directory; write app." + name)
	}
	abs = realAbs
	return AppRef{Path: path, Dir: abs, Name: name, Range: it.rng}, true
}

// realPath is p with its symlinks resolved, or p (clean) when it cannot
// be resolved (it does not exist yet: LoadWorkspace reports that).
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// checkHostPorts reports two apps of a target served on one host port:
// every app's guest ports land on host addresses, and two cannot share
// one.
func checkHostPorts(t *Target, apps []AppPorts) hcl.Diagnostics {
	if t.Settings == nil {
		return nil
	}
	owner := map[Forward]string{}
	for _, a := range apps {
		fw, ok := t.Settings.Forwards(a.Ports)
		if !ok {
			return nil // apps are reached at their own addresses
		}
		for _, f := range fw {
			key := Forward{Bind: f.Bind, Host: f.Host}
			if other, taken := owner[key]; taken && other != a.Name {
				return hcl.Diagnostics{errorAt(t.Range, "Host port used twice",
					fmt.Sprintf("Apps %q and %q of target %q would both be served on host port %d. A target maps a guest port to one host port for all its apps, so give the apps different guest ports, map them to other host ports in the target's %s block, or put them in different targets.", other, a.Name, t.Name, f.Host, t.Provider))}
			}
			owner[key] = a.Name
		}
	}
	return nil
}

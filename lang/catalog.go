package lang

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Catalog is what the stages implement, as the Unikfile needs to know it:
// the names each enumerated attribute accepts and the settings blocks that
// bases and providers own. lang keeps no list of its own: stages/registry
// builds the Catalog from the stage tables, so a name is accepted exactly
// when the stage behind it is built.
type Catalog struct {
	// Languages an app's language may name (stages/compile's table).
	Languages []string
	// Bases, by name; an app's base defaults to DefaultBase.
	Bases       map[string]BaseSchema
	DefaultBase string
	// Providers, by name.
	Providers map[string]ProviderSchema
	// Formats a target's format may name (FormatKernelInitrd and the disk
	// formats of stages/package/format); Boots the firmware of disks.
	Formats []string
	Boots   []string
	// Executors a build block's executor may name (including "auto").
	Executors []string
}

// FormatKernelInitrd is the direct-boot image format: a kernel and an
// initramfs (or the base's own equivalent) that a hypervisor loads itself.
const FormatKernelInitrd = "kernel+initrd"

// BaseSchema is a base as the Unikfile sees it: which languages it runs
// and the settings block of an app named after it (`linux { ... }`).
type BaseSchema interface {
	// Languages the base runs; nil means every language.
	Languages() []string
	// Schema is the body of the base's block; nil means the base takes no
	// block.
	Schema() *hcl.BodySchema
	// Decode reads the app's block (b is empty when the app has none) into
	// the base's settings, which the base gets back as App.BaseSettings.
	// Problems go to b's diagnostics.
	Decode(b *Block, app *App) any
}

// ProviderSchema is a provider as the Unikfile sees it: the formats it
// boots and the settings block of a target named after it (`qemu { ... }`).
type ProviderSchema interface {
	// Formats it boots, and the format and boot mode of a target that sets
	// none.
	Formats() []string
	Default() (format, boot string)
	// Schema is the body of the provider's block; nil means the provider
	// takes no block.
	Schema() *hcl.BodySchema
	// Decode reads the target's block (b is empty when the target has
	// none) into the provider's settings. Problems go to b's diagnostics.
	Decode(b *Block, t TargetInfo) TargetSettings
}

// TargetInfo is what a provider's Decode may check settings against.
type TargetInfo struct {
	Name string
	// Apps are the target's apps with their ports. Partial is set when
	// the target also runs apps of other Unikfiles that are not loaded
	// (Load of one file): checks that need every app are left to
	// LoadWorkspace, which decodes again with all of them.
	Apps    []AppPorts
	Partial bool
	Range   hcl.Range
}

// AppPorts is one app of a target and the ports it listens on.
type AppPorts struct {
	Name  string
	Ports []int
}

// TargetSettings are a provider's decoded settings of one target. The
// provider reads its own concrete type back from Target.Settings.
type TargetSettings interface {
	// Forwards maps an app's guest ports to the host addresses this host
	// reaches them on, in the order of ports. ok is false when the
	// provider reaches apps at the guest's own address instead.
	Forwards(ports []int) (fw []Forward, ok bool)
	// Redeploy is what of the settings shapes every instance of the
	// target (an accelerator, a machine type, a network): when it
	// changes, instances are replaced. It is JSON-encoded into the
	// settings digest; settings that concern one app only (its host
	// ports) belong in Forwards instead.
	Redeploy() any
}

// Forward is one guest port served on a host address.
type Forward struct {
	Bind  string `json:"bind"`
	Host  int    `json:"host"`
	Guest int    `json:"guest"`
}

// HostForwards forwards each of ports from bind on the host: from the port
// hostPorts maps it to, else from the same number. It is what providers
// that forward ports (qemu, libvirt's user networking) return from
// TargetSettings.Forwards.
func HostForwards(bind string, hostPorts map[int]int, ports []int) []Forward {
	fw := make([]Forward, 0, len(ports))
	for _, g := range ports {
		h, ok := hostPorts[g]
		if !ok {
			h = g
		}
		fw = append(fw, Forward{Bind: bind, Host: h, Guest: g})
	}
	return fw
}

// SettingsOf returns t's settings as the provider's own type S, or def()
// for a target without settings of that type (one decoded elsewhere, a
// test's).
func SettingsOf[S TargetSettings](t *Target, def func() S) S {
	if t != nil {
		if s, ok := t.Settings.(S); ok {
			return s
		}
	}
	return def()
}

// Forwards are the host addresses app a is reached on through t's
// provider; ok is false when the provider reaches apps at their own
// address.
func (t *Target) Forwards(a *App) ([]Forward, bool) {
	if t.Settings == nil || a == nil {
		return nil, false
	}
	return t.Settings.Forwards(a.Ports)
}

// decodeSettingsBlock finds the block of type kind among blocks (a second
// one is an error), decodes it against schema with s in scope, and returns
// the Block its owner decodes. With no such block, the Block has no
// attributes. owner names what holds the block ("an app", "a target").
func decodeSettingsBlock(kind, owner string, blocks []*hcl.Block, schema *hcl.BodySchema, s *scope) (*Block, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var found *hcl.Block
	for _, b := range blocks {
		if b.Type != kind {
			continue
		}
		if found != nil {
			diags = append(diags, errorAt(b.DefRange, fmt.Sprintf("Duplicate %s block", kind),
				fmt.Sprintf("A %s block was already declared at %s; %s has at most one.", kind, posString(found.DefRange), owner)))
			continue
		}
		found = b
	}
	blk := &Block{decoder: decoder{s: s, attrs: hcl.Attributes{}}, dir: s.dir}
	if found == nil {
		return blk, diags
	}
	if schema == nil {
		schema = &hcl.BodySchema{}
	}
	content, d := found.Body.Content(schema)
	blk.attrs = content.Attributes
	return blk, append(diags, d...)
}

// settingsBlocks is the block schema of an app's (or target's) settings
// blocks: one per base (or provider) that takes a block.
func settingsBlocks[S interface{ Schema() *hcl.BodySchema }](m map[string]S) []hcl.BlockHeaderSchema {
	var out []hcl.BlockHeaderSchema
	for _, name := range sortedKeys(m) {
		if m[name].Schema() != nil {
			out = append(out, hcl.BlockHeaderSchema{Type: name})
		}
	}
	return out
}

// unbuiltBlock is the block schema of a block named after the value of
// attribute attr of b (a base or provider) when built says it is not one
// this version builds: such a block is then accepted, since the error at
// attr says all there is to say.
func unbuiltBlock(b *hcl.Block, s *scope, attr string, built func(string) bool) []hcl.BlockHeaderSchema {
	pc, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: attr}}})
	if pc == nil || pc.Attributes[attr] == nil {
		return nil
	}
	var ignored hcl.Diagnostics // reported when the attribute is decoded
	v, ok := s.eval(pc.Attributes[attr].Expr, cty.String, "", &ignored)
	if !ok || v.IsNull() || !v.IsKnown() || built(v.AsString()) || !validName(v.AsString()) {
		return nil
	}
	return []hcl.BlockHeaderSchema{{Type: v.AsString()}}
}

// notBuilt is the diagnostic for a base or provider that the Unikfile
// names and this version of unikfile does not build, listing those it does.
func notBuilt(d *decoder, attr *hcl.Attribute, kind, name string, built []string) {
	d.errorf(attr.Expr.Range(), fmt.Sprintf("Unsupported %s %q", kind, name),
		"%s must be one of: %s (the %ss this version of unikfile builds).%s",
		kind, strings.Join(built, ", "), kind, suggest(name, built))
}

// Block is one settings block (a base's block of an app, a provider's
// block of a target) as its owner decodes it: typed getters that record
// every problem with the attribute's range and go on, so one pass reports
// everything. A getter whose attribute is absent or null returns the
// default and a nil attribute.
type Block struct {
	decoder
	// dir is the Unikfile's directory, which relative paths are against.
	dir string
}

// Diagnostics are the problems recorded so far.
func (b *Block) Diagnostics() hcl.Diagnostics { return b.diags }

// Attr returns the attribute named name, or nil.
func (b *Block) Attr(name string) *hcl.Attribute { return b.attrs[name] }

// Errorf records an error at rng.
func (b *Block) Errorf(rng hcl.Range, summary, format string, args ...any) {
	b.errorf(rng, summary, format, args...)
}

// String returns the string attribute name, or def.
func (b *Block) String(name, def string) (string, *hcl.Attribute) { return b.str(name, def) }

// Choice returns the string attribute name, or def, checking it is one of
// choices.
func (b *Block) Choice(name, def string, choices []string) string {
	return b.choice(name, def, choices)
}

// Int returns the whole-number attribute name in [lo, hi], or def.
func (b *Block) Int(name string, def, lo, hi int) (int, *hcl.Attribute) {
	v, attr, ok := b.value(name, cty.Number)
	if !ok {
		return def, attr
	}
	n, ok := intIn(v, lo, hi)
	if !ok {
		b.errorf(attr.Expr.Range(), "Invalid "+name, "%s is not valid for %s: use a whole number from %d to %d.", numberString(v), name, lo, hi)
		return def, attr
	}
	return n, attr
}

// Bool returns the boolean attribute name, or def.
func (b *Block) Bool(name string, def bool) (bool, *hcl.Attribute) {
	v, attr, ok := b.value(name, cty.Bool)
	if !ok {
		return def, attr
	}
	return v.True(), attr
}

// Memory returns the memory size attribute name ("512MiB", "1GiB"), as an
// app's memory is written, in MiB; def when it is absent.
func (b *Block) Memory(name string, def int) (int, *hcl.Attribute) {
	s, attr := b.str(name, "")
	if attr == nil || s == "" {
		return def, attr
	}
	mib, err := parseMemory(s)
	if err != nil {
		b.errorf(attr.Expr.Range(), "Invalid memory size", "%s.", err)
		return def, attr
	}
	return mib, attr
}

// Strings returns the list(string) attribute name; never nil.
func (b *Block) Strings(name string) []string { return b.strList(name) }

// Path returns the string attribute name as a path: absolute, or made
// absolute against the Unikfile's directory. Such a path may lie outside
// the project (a kernel, a toolchain); it is not checked for existence.
func (b *Block) Path(name string) (string, *hcl.Attribute) {
	p, attr := b.str(name, "")
	if p == "" {
		return "", attr
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(b.dir, p)
	}
	return filepath.Clean(p), attr
}

// PortMap is an entry of a map from ports to ports (host_ports = { 8080 =
// 9000 }), with the ranges of its key and value.
type PortMap struct {
	From, To       int
	FromRng, ToRng hcl.Range
}

// Ports reads a map whose keys and values are ports (1-65535). Keys that
// name one port twice (8080 and "08080") and values used twice are errors.
func (b *Block) Ports(name string) []PortMap {
	pairs, _ := b.pairs(name, cty.Number, false)
	var out []PortMap
	keySeen := map[int]hcl.Range{}
	valSeen := map[int]hcl.Range{}
	for _, kv := range pairs {
		from, ok := port(cty.StringVal(kv.key))
		if !ok {
			b.errorf(kv.keyRng, "Invalid port", "%q is not a port: keys of %s are ports, whole numbers from 1 to 65535.", kv.key, name)
			continue
		}
		if first, dup := keySeen[from]; dup {
			b.errorf(kv.keyRng, "Duplicate port", "Port %d is already mapped at %s.", from, posString(first))
			continue
		}
		to, ok := port(kv.val)
		if !ok {
			b.errorf(kv.valRng, "Invalid port", "%s is not a port: values of %s are ports, whole numbers from 1 to 65535.", numberString(kv.val), name)
			continue
		}
		if first, dup := valSeen[to]; dup {
			b.errorf(kv.valRng, "Duplicate host port", "Host port %d is already used at %s.", to, posString(first))
			continue
		}
		keySeen[from], valSeen[to] = kv.keyRng, kv.valRng
		out = append(out, PortMap{From: from, To: to, FromRng: kv.keyRng, ToRng: kv.valRng})
	}
	return out
}

// Known reports whether names holds name; a helper for Decode methods
// that check a value against a list.
func Known(names []string, name string) bool { return slices.Contains(names, name) }

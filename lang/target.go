package lang

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var targetSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "provider", Required: true},
		{Name: "apps", Required: true},
		{Name: "format"},
		{Name: "boot"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "qemu"}},
}

var qemuSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "accel"},
		{Name: "cpus"},
		{Name: "bind"},
		{Name: "host_ports"},
	},
}

const maxCPUs = 64

// decodeTarget decodes one `target` block. p holds the apps decoded so
// far, whose ports host_ports is checked against.
func decodeTarget(b *hcl.Block, s *scope, p *Project) (*Target, hcl.Diagnostics) {
	t := &Target{
		Name:  b.Labels[0],
		Apps:  []string{},
		QEMU:  QEMUSettings{Accel: "auto", CPUs: 1, Bind: "127.0.0.1", HostPorts: map[int]int{}},
		Range: b.DefRange,
	}
	content, diags := b.Body.Content(targetSchema)
	d := &decoder{s: s, attrs: content.Attributes}
	t.Provider = d.choice("provider", "", providers)
	t.Apps, t.Imports = decodeTargetApps(d, s, p.Dir)
	decodeFormat(d, t)

	for i, qb := range content.Blocks {
		if i > 0 {
			d.errorf(qb.DefRange, "Duplicate qemu block",
				"A qemu block was already declared at %s; a target has at most one.", posString(content.Blocks[0].DefRange))
			continue
		}
		qc, qd := qb.Body.Content(qemuSchema)
		diags = append(diags, qd...)
		sub := &decoder{s: s, attrs: qc.Attributes}
		decodeQEMU(sub, t, p)
		d.diags = append(d.diags, sub.diags...)
	}
	checkHostPorts(d, t, p)
	return t, append(diags, d.diags...)
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
	if abs == filepath.Clean(dir) {
		return bad("names this Unikfile's own directory; write app." + name)
	}
	return AppRef{Path: path, Dir: abs, Name: name, Range: it.rng}, true
}

// decodeQEMU reads a target's qemu block into t.QEMU.
func decodeQEMU(d *decoder, t *Target, p *Project) {
	q := &t.QEMU
	q.Accel = d.choice("accel", q.Accel, accels)
	if v, attr, ok := d.value("cpus", cty.Number); ok {
		if n, ok := intIn(v, 1, maxCPUs); ok {
			q.CPUs = n
		} else {
			d.errorf(attr.Expr.Range(), "Invalid cpus", "%s is not a CPU count: use a whole number from 1 to %d.", numberString(v), maxCPUs)
		}
	}
	if bind, attr := d.str("bind", q.Bind); attr != nil {
		if ip := net.ParseIP(bind); ip == nil || ip.To4() == nil {
			d.errorf(attr.Expr.Range(), "Invalid bind address",
				"%q is not an IPv4 address (QEMU's user network forwards IPv4): use e.g. \"127.0.0.1\" (this host only) or \"0.0.0.0\" (all interfaces).", bind)
		} else {
			q.Bind = bind
		}
	}

	// The guest ports of the target's apps, for checking host_ports keys.
	exposed := map[int]bool{}
	var list []string
	for _, name := range t.Apps {
		if a := p.App(name); a != nil {
			for _, n := range a.Ports {
				exposed[n] = true
				list = append(list, fmt.Sprintf("%d (%s)", n, name))
			}
		}
	}
	pairs, _ := d.pairs("host_ports", cty.Number)
	hostSeen := map[int]hcl.Range{}
	for _, kv := range pairs {
		guest, ok := port(cty.StringVal(kv.key))
		if !ok {
			d.errorf(kv.keyRng, "Invalid port", "%q is not a port: host_ports keys are guest ports, whole numbers from 1 to 65535.", kv.key)
			continue
		}
		if !exposed[guest] && len(t.Imports) == 0 {
			have := "none of them expose a port"
			if len(list) > 0 {
				have = "they expose " + strings.Join(list, ", ")
			}
			d.errorf(kv.keyRng, "Port not exposed by the target's apps",
				"host_ports maps guest ports to host ports, but no app of target %q listens on port %d; %s.", t.Name, guest, have)
			continue
		}
		host, ok := port(kv.val)
		if !ok {
			d.errorf(kv.valRng, "Invalid port", "%s is not a port: host ports are whole numbers from 1 to 65535.", numberString(kv.val))
			continue
		}
		if first, dup := hostSeen[host]; dup {
			d.errorf(kv.valRng, "Duplicate host port", "Host port %d is already used at %s.", host, posString(first))
			continue
		}
		hostSeen[host] = kv.valRng
		q.HostPorts[guest] = host
	}

}

// checkHostPorts reports two apps of a target served on one host port:
// every app's guest ports land on host ports, and two cannot share one.
func checkHostPorts(d *decoder, t *Target, p *Project) {
	q := &t.QEMU
	owner := map[int]string{}
	for _, name := range t.Apps {
		a := p.App(name)
		if a == nil {
			continue
		}
		for _, g := range a.Ports {
			host := g
			if h, ok := q.HostPorts[g]; ok {
				host = h
			}
			if other, taken := owner[host]; taken && other != name {
				d.errorf(t.Range, "Host port used twice",
					"Apps %q and %q of target %q would both be served on host port %d. host_ports maps a guest port to one host port for the whole target, so give the apps different guest ports, or put them in different targets.", other, name, t.Name, host)
				return
			}
			owner[host] = name
		}
	}
}

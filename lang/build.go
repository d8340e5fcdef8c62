package lang

import (
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var buildSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "executor"},
		{Name: "buildkit_host"},
		{Name: "cache_from"},
		{Name: "cache_to"},
	},
}

// cacheTypes are the BuildKit cache backends a Unikfile may name.
var cacheTypes = []string{"registry", "local", "inline", "gha", "s3", "azblob"}

// decodeBuild decodes the project-wide `build` block.
func decodeBuild(b *hcl.Block, s *scope) (Build, hcl.Diagnostics) {
	content, diags := b.Body.Content(buildSchema)
	d := &decoder{s: s, attrs: content.Attributes}
	out := Build{Executor: d.choice("executor", "local", s.cat.Executors)}
	out.ExecutorSet = content.Attributes["executor"] != nil
	out.BuildKitHost, _ = d.str("buildkit_host", "")
	out.CacheFrom = d.cacheSpecs("cache_from")
	out.CacheTo = d.cacheSpecs("cache_to")
	return out, append(diags, d.diags...)
}

// cacheSpecs reads a list of BuildKit cache options written as BuildKit's
// command line writes them: "type=registry,ref=host/repo:tag,mode=max".
func (d *decoder) cacheSpecs(name string) []CacheSpec {
	items, _ := d.list(name, cty.String)
	var out []CacheSpec
	for _, it := range items {
		spec, err := ParseCacheSpec(it.val.AsString())
		if err != nil {
			d.errorf(it.rng, "Invalid "+name, "%s.", err)
			continue
		}
		if need := requiredCacheAttr(name, spec.Type); need != "" && spec.Attrs[need] == "" {
			d.errorf(it.rng, "Invalid "+name, "A %s cache in %s needs %s=...: e.g. %q.", spec.Type, name, need, cacheExample(name, spec.Type))
			continue
		}
		if spec.Type == "local" {
			for _, k := range []string{"src", "dest"} {
				if p, ok := spec.Attrs[k]; ok && (filepath.IsAbs(p) || !within(d.s.dir, filepath.Join(d.s.dir, p))) {
					d.errorf(it.rng, "Cache folder outside the project",
						"%s=%s in %s leaves the project: a local cache folder is relative to the Unikfile's directory and inside it, e.g. %q.", k, p, name, cacheExample(name, spec.Type))
				}
			}
		}
		out = append(out, spec)
	}
	return out
}

// ParseCacheSpec parses "type=T,key=value,..." (CSV, so values may be
// quoted). type is required and must be one BuildKit knows.
func ParseCacheSpec(s string) (CacheSpec, error) {
	r := csv.NewReader(strings.NewReader(s))
	fields, err := r.Read()
	if err != nil {
		return CacheSpec{}, fmt.Errorf("%q is not a list of key=value pairs: %v", s, err)
	}
	spec := CacheSpec{Attrs: map[string]string{}}
	for _, f := range fields {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || k == "" {
			return CacheSpec{}, fmt.Errorf("%q: %q is not key=value (write e.g. \"type=registry,ref=registry.example.com/app:cache,mode=max\")", s, f)
		}
		if k == "type" {
			spec.Type = v
			continue
		}
		if _, dup := spec.Attrs[k]; dup {
			return CacheSpec{}, fmt.Errorf("%q: key %q is given twice", s, k)
		}
		spec.Attrs[k] = v
	}
	if spec.Type == "" {
		return CacheSpec{}, fmt.Errorf("%q has no type: start it with type=registry or type=local", s)
	}
	if !contains(cacheTypes, spec.Type) {
		return CacheSpec{}, fmt.Errorf("%q: cache type %q is not one of: %s", s, spec.Type, strings.Join(cacheTypes, ", "))
	}
	return spec, nil
}

// requiredCacheAttr is the attribute BuildKit needs for a cache of type typ
// used as name (cache_from or cache_to).
func requiredCacheAttr(name, typ string) string {
	switch {
	case typ == "registry":
		return "ref"
	case typ == "local" && name == "cache_from":
		return "src"
	case typ == "local":
		return "dest"
	}
	return ""
}

func cacheExample(name, typ string) string {
	switch {
	case typ == "registry" && name == "cache_to":
		return "type=registry,ref=registry.example.com/app:buildcache,mode=max"
	case typ == "registry":
		return "type=registry,ref=registry.example.com/app:buildcache"
	case name == "cache_from":
		return "type=local,src=.buildcache"
	}
	return "type=local,dest=.buildcache,mode=max"
}

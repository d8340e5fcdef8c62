package lang

import (
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder turns the attributes of one block into Go values. Every problem
// is appended to diags; a getter that meets one returns its zero value or
// default, so decoding goes on and reports everything in one pass.
type decoder struct {
	s     *scope
	attrs hcl.Attributes
	diags hcl.Diagnostics
}

// item is one element of a list attribute with the range to blame for it:
// the element's own expression when the list is written literally, the
// whole attribute's expression otherwise.
type item struct {
	val cty.Value
	rng hcl.Range
}

// pair is one entry of a map attribute, with ranges like item's.
type pair struct {
	key    string
	keyRng hcl.Range
	val    cty.Value
	valRng hcl.Range
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, errorAt(rng, summary, fmt.Sprintf(format, args...)))
}

// value evaluates the named attribute as ty. ok is false if the attribute
// is absent or null, or if it could not be evaluated.
func (d *decoder) value(name string, ty cty.Type) (v cty.Value, attr *hcl.Attribute, ok bool) {
	attr = d.attrs[name]
	if attr == nil {
		return cty.NilVal, nil, false
	}
	v, ok = d.s.eval(attr.Expr, ty, fmt.Sprintf("attribute %q", name), &d.diags)
	if ok && v.IsNull() {
		return cty.NilVal, attr, false
	}
	return v, attr, ok
}

// str returns the named string attribute, or def.
func (d *decoder) str(name, def string) (string, *hcl.Attribute) {
	v, attr, ok := d.value(name, cty.String)
	if !ok {
		return def, attr
	}
	return v.AsString(), attr
}

// choice returns the named string attribute, or def, and checks it is one
// of choices.
func (d *decoder) choice(name, def string, choices []string) string {
	v, attr, ok := d.value(name, cty.String)
	if !ok {
		return def
	}
	if s := v.AsString(); !contains(choices, s) {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("Unsupported %s %q", name, s),
			"%s must be one of: %s.%s", name, strings.Join(choices, ", "), suggest(s, choices))
		return def
	}
	return v.AsString()
}

// strList returns the named list(string) attribute; never nil.
func (d *decoder) strList(name string) []string {
	out := []string{}
	v, _, ok := d.value(name, cty.List(cty.String))
	if !ok {
		return out
	}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.errorf(d.attrs[name].Expr.Range(), "Invalid value", "%s must not hold null.", name)
			continue
		}
		out = append(out, e.AsString())
	}
	return out
}

// list evaluates the named attribute as a list whose elements convert to
// elemTy, keeping a range for each element. Null elements are errors.
func (d *decoder) list(name string, elemTy cty.Type) ([]item, *hcl.Attribute) {
	attr := d.attrs[name]
	if attr == nil {
		return nil, nil
	}
	what := fmt.Sprintf("attribute %q", name)
	var items []item
	if exprs, diags := hcl.ExprList(attr.Expr); !diags.HasErrors() {
		for _, e := range exprs {
			v, ok := d.s.eval(e, elemTy, what, &d.diags)
			switch {
			case !ok:
			case v.IsNull():
				d.errorf(e.Range(), "Invalid value", "An element of %s must not be null.", name)
			default:
				items = append(items, item{v, e.Range()})
			}
		}
		return items, attr
	}
	v, ok := d.s.eval(attr.Expr, cty.DynamicPseudoType, what, &d.diags)
	if !ok || v.IsNull() {
		return nil, attr
	}
	rng := attr.Expr.Range()
	if t := v.Type(); !t.IsListType() && !t.IsTupleType() && !t.IsSetType() {
		want := cty.List(elemTy).FriendlyNameForConstraint()
		if elemTy == cty.DynamicPseudoType {
			want = "list"
		}
		d.errorf(rng, "Incorrect attribute value type", "Inappropriate value for %s: %s required.", what, want)
		return nil, attr
	}
	for i, it := 0, v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		cv, err := convert.Convert(e, elemTy)
		switch {
		case err != nil:
			d.errorf(rng, "Incorrect attribute value type", "Inappropriate value for %s: element %d: %s.", what, i, err)
		case cv.IsNull():
			d.errorf(rng, "Invalid value", "Element %d of %s must not be null.", i, name)
		default:
			items = append(items, item{cv, rng})
		}
	}
	return items, attr
}

// pairs evaluates the named attribute as a map whose values convert to
// elemTy, keeping ranges for each key and value. Keys must be unique.
// Keys are text, whatever they are written as; values are strict unless
// loose (see looseEval).
func (d *decoder) pairs(name string, elemTy cty.Type, loose bool) ([]pair, *hcl.Attribute) {
	attr := d.attrs[name]
	if attr == nil {
		return nil, nil
	}
	what := fmt.Sprintf("attribute %q", name)
	var out []pair
	if kvs, diags := hcl.ExprMap(attr.Expr); !diags.HasErrors() {
		seen := map[string]hcl.Range{}
		for _, kv := range kvs {
			k, kok := d.s.looseEval(kv.Key, cty.String, "a key of "+what, &d.diags)
			evalValue := d.s.eval
			if loose {
				evalValue = d.s.looseEval
			}
			v, vok := evalValue(kv.Value, elemTy, what, &d.diags)
			if !kok || !vok {
				continue
			}
			if k.IsNull() || v.IsNull() {
				d.errorf(kv.Key.Range(), "Invalid value", "Keys and values of %s must not be null.", name)
				continue
			}
			key := k.AsString()
			if first, dup := seen[key]; dup {
				d.errorf(kv.Key.Range(), "Duplicate key", "Key %q of %s was already set at %s.", key, name, posString(first))
				continue
			}
			seen[key] = kv.Key.Range()
			out = append(out, pair{key, kv.Key.Range(), v, kv.Value.Range()})
		}
		return out, attr
	}
	v, ok := d.s.eval(attr.Expr, cty.DynamicPseudoType, what, &d.diags)
	if !ok || v.IsNull() {
		return nil, attr
	}
	rng := attr.Expr.Range()
	if t := v.Type(); !t.IsMapType() && !t.IsObjectType() {
		d.errorf(rng, "Incorrect attribute value type", "Inappropriate value for %s: %s required.",
			what, cty.Map(elemTy).FriendlyNameForConstraint())
		return nil, attr
	}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		cv, err := convert.Convert(e, elemTy)
		switch {
		case err != nil:
			d.errorf(rng, "Incorrect attribute value type", "Inappropriate value for %s: key %q: %s.", what, k.AsString(), err)
		case cv.IsNull():
			d.errorf(rng, "Invalid value", "Key %q of %s must not be null.", k.AsString(), name)
		default:
			out = append(out, pair{k.AsString(), rng, cv, rng})
		}
	}
	return out, attr
}

// intIn converts a known number to an int in [lo, hi]; ok is false if it
// is not a whole number in that range.
func intIn(v cty.Value, lo, hi int) (int, bool) {
	if v.Type() != cty.Number {
		return 0, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i < math.MinInt32 || i > math.MaxInt32 || int(i) < lo || int(i) > hi {
		return 0, false
	}
	return int(i), true
}

// port reads a TCP/UDP port number from v, which may be a number or a
// string holding one (map keys are strings).
func port(v cty.Value) (int, bool) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		return 0, false
	}
	return intIn(n, 1, 65535)
}

// numberString renders a number value for messages.
func numberString(v cty.Value) string {
	if v.Type() == cty.Number {
		return v.AsBigFloat().Text('f', -1)
	}
	if v.Type() == cty.String {
		return fmt.Sprintf("%q", v.AsString())
	}
	return v.GoString()
}

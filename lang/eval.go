package lang

import (
	"fmt"
	"github.com/agext/levenshtein"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// scope is everything an expression in a Unikfile can refer to: var.NAME,
// local.NAME, app.NAME (an object with the app's name) and the functions.
//
// A value that could not be computed because of an error already reported
// is cty.DynamicVal (unknown); evaluating anything that depends on it
// yields an unknown value, which decoders skip silently so one mistake
// gives one diagnostic.
type scope struct {
	cat *Catalog
	// dir is the Unikfile's directory.
	dir    string
	vars   map[string]cty.Value
	locals map[string]cty.Value
	apps   []string // declared app names, in declaration order
	funcs  map[string]function.Function
	budget *budget
	ctx    *hcl.EvalContext     // built on demand; nil after a change
	fixed  map[string]cty.Value // the var and app objects, made on first use
}

func newScope(cat *Catalog, dir string) *scope {
	b := newBudget()
	return &scope{
		cat:    cat,
		dir:    dir,
		budget: b,
		vars:   map[string]cty.Value{},
		locals: map[string]cty.Value{},
		funcs:  functions(b),
	}
}

// setLocal records the value of a local and invalidates the cached context.
func (s *scope) setLocal(name string, v cty.Value) {
	s.locals[name] = v
	s.ctx = nil
}

// evalContext returns the context expressions are evaluated in, with
// every local value.
func (s *scope) evalContext() *hcl.EvalContext {
	if s.ctx != nil {
		return s.ctx
	}
	s.ctx = s.contextWith(objectOf(s.locals))
	return s.ctx
}

// contextWith is a context with locals as the local object. The var and
// app objects are made once: variables and apps are known before anything
// is evaluated in the scope.
func (s *scope) contextWith(locals cty.Value) *hcl.EvalContext {
	if s.fixed == nil {
		apps := make(map[string]cty.Value, len(s.apps))
		for _, name := range s.apps {
			apps[name] = cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name)})
		}
		s.fixed = map[string]cty.Value{"var": objectOf(s.vars), "app": objectOf(apps)}
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": s.fixed["var"], "local": locals, "app": s.fixed["app"]},
		Functions: s.funcs,
	}
}

// contextFor is the context to evaluate expr in. While locals are being
// evaluated (each one changes them), it holds only the locals expr names,
// so that evaluating n locals costs what they reference, not n times n.
func (s *scope) contextFor(expr hcl.Expression) *hcl.EvalContext {
	if s.ctx != nil {
		return s.ctx
	}
	some := map[string]cty.Value{}
	for _, t := range expr.Variables() {
		if t.RootName() != "local" {
			continue
		}
		if len(t) < 2 {
			return s.evalContext() // the whole local object
		}
		attr, isAttr := t[1].(hcl.TraverseAttr)
		if !isAttr {
			return s.evalContext()
		}
		if v, known := s.locals[attr.Name]; known {
			some[attr.Name] = v
		}
	}
	return s.contextWith(objectOf(some))
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// checkRefs reports references to things that are not declared, with the
// list of what is, at the reference's own range.
func (s *scope) checkRefs(expr hcl.Expression) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, t := range expr.Variables() {
		name := ""
		if len(t) > 1 {
			if a, ok := t[1].(hcl.TraverseAttr); ok {
				name = a.Name
			}
		}
		rng := t.SourceRange()
		switch root := t.RootName(); root {
		case "var":
			if _, ok := s.vars[name]; name != "" && !ok {
				diags = append(diags, errorAt(rng, "Reference to undeclared variable",
					fmt.Sprintf("There is no variable named %q; %s.%s",
						name, declared("variables", sortedKeys(s.vars)), suggest(name, sortedKeys(s.vars)))))
			}
		case "local":
			if _, ok := s.locals[name]; name != "" && !ok {
				diags = append(diags, errorAt(rng, "Reference to undeclared local value",
					fmt.Sprintf("There is no local value named %q; %s.%s",
						name, declared("local values", sortedKeys(s.locals)), suggest(name, sortedKeys(s.locals)))))
			}
		case "app":
			if name != "" && !contains(s.apps, name) {
				diags = append(diags, errorAt(rng, "Reference to undeclared app",
					fmt.Sprintf("There is no app named %q; %s.%s", name, declared("apps", s.apps), suggest(name, s.apps))))
			}
		default:
			diags = append(diags, errorAt(rng, "Unknown reference",
				fmt.Sprintf("There is nothing named %q in a Unikfile; references start with var., local. or app.", root)))
		}
	}
	return diags
}

// declared says what names of a kind exist, for "did you mean" details.
func declared(kind string, names []string) string {
	if len(names) == 0 {
		return "no " + kind + " are declared"
	}
	return "declared " + kind + ": " + strings.Join(names, ", ")
}

// suggest returns ` Did you mean "NAME"?` for the name closest to given,
// or "" if none is close.
func suggest(given string, names []string) string {
	best, bestDist := "", 3 // closer than 3 edits, as HCL's own suggestions
	for _, n := range names {
		if d := levenshtein.Distance(given, n, nil); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// looseEval is eval for the elements of args and the values of env, which
// take numbers and bools as their text (env = { PORT = 8080 }).
func (s *scope) looseEval(expr hcl.Expression, ty cty.Type, what string, diags *hcl.Diagnostics) (cty.Value, bool) {
	v, ok := s.eval(expr, cty.DynamicPseudoType, what, diags)
	if !ok {
		return v, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		*diags = append(*diags, errorAt(expr.Range(), "Incorrect attribute value type", fmt.Sprintf("Inappropriate value for %s: %s.", what, err)))
		return cty.NilVal, false
	}
	return cv, true
}

// eval evaluates expr in the scope and converts the result to ty. ok is
// false when the value cannot be used: an error (reported into *diags) or
// an unknown value (an error was reported earlier). A null value is ok and
// is returned as a null of type ty.
func (s *scope) eval(expr hcl.Expression, ty cty.Type, what string, diags *hcl.Diagnostics) (cty.Value, bool) {
	if d := s.checkRefs(expr); d.HasErrors() {
		*diags = append(*diags, d...)
		return cty.NilVal, false
	}
	ctx := s.contextFor(expr)
	v, d := expr.Value(ctx)
	*diags = append(*diags, d...)
	if d.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	if err := s.budget.charge(v); err != nil {
		*diags = append(*diags, errorAt(expr.Range(), "Value too large", fmt.Sprintf("The value of %s: %s.", what, err)))
		return cty.NilVal, false
	}
	if ty == cty.String && (v.Type() == cty.Number || v.Type() == cty.Bool) && !v.IsNull() {
		// A number or bool where a name, a path or a size is expected is a
		// mistake more often than not; lists of strings and string maps
		// (args, env) take them, see looseEval.
		*diags = append(*diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value for %s: a string is required, and this is a %s; write it in quotes if you mean the text.", what, v.Type().FriendlyName()),
			Subject:     expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: ctx,
		})
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value for %s: %s.", what, err),
			Subject:     expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: ctx,
		})
		return cty.NilVal, false
	}
	return cv, true
}

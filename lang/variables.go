package lang

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvPrefix starts the names of environment variables that set Unikfile
// variables: UNIKFILE_VAR_region=eu-west-1 sets var.region.
const EnvPrefix = "UNIKFILE_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "default"},
		{Name: "type"},
		{Name: "description"},
	},
}

// variable is a decoded `variable "name" { ... }` block.
type variable struct {
	name    string
	block   *hcl.Block
	ty      cty.Type  // cty.DynamicPseudoType when no type is given
	def     cty.Value // cty.NilVal when there is no default
	defined bool      // the block decoded without errors
}

// decodeVariables decodes the variable blocks and gives each variable its
// value: --var, then UNIKFILE_VAR_name, then the default. A variable whose
// value is in error is cty.DynamicVal in the result.
func decodeVariables(blocks []*hcl.Block, opts Options, sources Sources) (map[string]cty.Value, hcl.Diagnostics) {
	blocks, diags := uniqueBlocks("variable", blocks)
	vars := make([]*variable, 0, len(blocks))
	for _, b := range blocks {
		v, d := decodeVariable(b)
		diags = append(diags, d...)
		vars = append(vars, v)
	}

	names := make([]string, 0, len(vars))
	for _, v := range vars {
		names = append(names, v.name)
	}
	given := sortedKeys(opts.Vars)
	for _, name := range given {
		if !contains(names, name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Undeclared variable %q given with --var", name),
				Detail: fmt.Sprintf("The Unikfile has no variable named %q; %s. Fix the name, or declare it with a variable %q block.",
					name, declared("variables", names), name),
			})
		}
	}

	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	fromEnv := map[string]string{}
	for _, kv := range environ {
		if rest, ok := strings.CutPrefix(kv, EnvPrefix); ok {
			if name, val, ok := strings.Cut(rest, "="); ok {
				fromEnv[name] = val
			}
		}
	}

	values := map[string]cty.Value{}
	for _, v := range vars {
		values[v.name] = cty.DynamicVal
		if !v.defined {
			continue
		}
		var raw, origin string
		if s, ok := opts.Vars[v.name]; ok {
			raw, origin = s, fmt.Sprintf("--var %s=%s", v.name, s)
		} else if s, ok := fromEnv[v.name]; ok {
			raw, origin = s, fmt.Sprintf("%s%s=%s", EnvPrefix, v.name, s)
		} else if v.def != cty.NilVal {
			values[v.name] = v.def
			continue
		} else {
			diags = append(diags, errorAt(v.block.DefRange, fmt.Sprintf("No value for variable %q", v.name),
				fmt.Sprintf("Variable %q has no default. Give it a value with --var %s=VALUE or %s%s=VALUE, or add a default.",
					v.name, v.name, EnvPrefix, v.name)))
			continue
		}
		val, d := v.parse(raw, origin, sources)
		diags = append(diags, d...)
		if !d.HasErrors() {
			values[v.name] = val
		}
	}
	return values, diags
}

// decodeVariable decodes one variable block.
func decodeVariable(b *hcl.Block) (*variable, hcl.Diagnostics) {
	v := &variable{name: b.Labels[0], block: b, ty: cty.DynamicPseudoType, def: cty.NilVal}
	content, diags := b.Body.Content(variableSchema)
	if attr, ok := content.Attributes["type"]; ok {
		ty, d := typeexpr.TypeConstraint(attr.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.ty = ty
		}
	}
	if attr, ok := content.Attributes["description"]; ok {
		val, d := attr.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if _, err := convert.Convert(val, cty.String); err != nil {
				diags = append(diags, errorAt(attr.Expr.Range(), "Invalid description", "A description must be a string."))
			}
		}
	}
	if attr, ok := content.Attributes["default"]; ok {
		val, d := constant(attr.Expr, "A variable's default")
		diags = append(diags, d...)
		if !d.HasErrors() {
			cv, err := convert.Convert(val, v.ty)
			if err != nil {
				diags = append(diags, errorAt(attr.Expr.Range(), "Invalid default value for variable",
					fmt.Sprintf("The default of variable %q does not match its type %s: %s.", v.name, typeexpr.TypeString(v.ty), err)))
			} else {
				v.def = cv
			}
		}
	}
	v.defined = !diags.HasErrors()
	return v, diags
}

// constant evaluates expr, which may call functions but not refer to
// anything: defaults and --var values are computed before anything else.
func constant(expr hcl.Expression, what string) (cty.Value, hcl.Diagnostics) {
	if refs := expr.Variables(); len(refs) > 0 {
		return cty.NilVal, hcl.Diagnostics{errorAt(refs[0].SourceRange(), "Variables not allowed",
			what+" cannot refer to other values; compute derived values in a locals block.")}
	}
	return expr.Value(&hcl.EvalContext{Functions: functions(newBudget())})
}

// parse converts a value given as text (--var or the environment) to the
// variable's type. Strings, numbers and bools are taken as they are;
// lists, maps and objects are parsed as HCL expressions, e.g. [80, 443].
func (v *variable) parse(raw, origin string, sources Sources) (cty.Value, hcl.Diagnostics) {
	structured := !v.ty.IsPrimitiveType() && v.ty != cty.DynamicPseudoType
	if v.ty == cty.DynamicPseudoType && v.def != cty.NilVal && !v.def.Type().IsPrimitiveType() {
		structured = true // no type given, but the default shows a list or map is expected
	}
	want := "value"
	if v.ty != cty.DynamicPseudoType {
		want = typeexpr.TypeString(v.ty)
	}
	fail := func(why string) hcl.Diagnostics {
		return hcl.Diagnostics{errorAt(v.block.DefRange, fmt.Sprintf("Invalid value for variable %q", v.name),
			fmt.Sprintf("The value given by %s is not a valid %s: %s.", origin, want, why))}
	}
	if !structured {
		val, err := convert.Convert(cty.StringVal(raw), v.ty)
		if err != nil {
			return cty.NilVal, fail(err.Error())
		}
		return val, nil
	}
	name := fmt.Sprintf("<value for var.%s>", v.name)
	sources[name] = &hcl.File{Body: hcl.EmptyBody(), Bytes: []byte(raw)}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), name, hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fail("it does not parse as an HCL expression (" + diagSummaries(diags) + ")")
	}
	val, diags := constant(expr, "A --var or "+EnvPrefix+" value")
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	cv, err := convert.Convert(val, v.ty)
	if err != nil {
		return cty.NilVal, fail(err.Error())
	}
	return cv, nil
}

func diagSummaries(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary != "" {
			parts = append(parts, strings.ToLower(d.Summary[:1])+d.Summary[1:])
		}
	}
	return strings.Join(parts, "; ")
}

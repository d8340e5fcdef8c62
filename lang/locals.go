package lang

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// evalLocals evaluates the attributes of every locals block into s, each
// after the locals it refers to. A cycle is an error naming its members;
// its locals, and whatever depends on them, stay unknown.
func (s *scope) evalLocals(blocks []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string]*hcl.Attribute{}
	var order []string // declaration order
	for _, b := range blocks {
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		list := make([]*hcl.Attribute, 0, len(attrs))
		for _, a := range attrs {
			list = append(list, a)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Range.Start.Byte < list[j].Range.Start.Byte })
		for _, a := range list {
			if first, ok := byName[a.Name]; ok {
				diags = append(diags, errorAt(a.NameRange, fmt.Sprintf("Duplicate local value %q", a.Name),
					fmt.Sprintf("Local value %q was already defined at %s. Names must be unique across locals blocks.",
						a.Name, posString(first.NameRange))))
				continue
			}
			byName[a.Name] = a
			order = append(order, a.Name)
			s.setLocal(a.Name, cty.DynamicVal)
		}
	}

	deps := func(name string) []string {
		var out []string
		for _, t := range byName[name].Expr.Variables() {
			if t.RootName() != "local" || len(t) < 2 {
				continue
			}
			if a, ok := t[1].(hcl.TraverseAttr); ok && byName[a.Name] != nil && !contains(out, a.Name) {
				out = append(out, a.Name)
			}
		}
		return out
	}

	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	inCycle := map[string]bool{}
	var stack, sorted []string
	var visit func(n string)
	visit = func(n string) {
		state[n] = visiting
		stack = append(stack, n)
		for _, m := range deps(n) {
			switch state[m] {
			case unvisited:
				visit(m)
			case visiting:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), m)
				for _, c := range cycle {
					inCycle[c] = true
				}
				refs := make([]string, len(cycle))
				for j, c := range cycle {
					refs[j] = "local." + c
				}
				diags = append(diags, errorAt(byName[m].Range, "Cycle in local values",
					fmt.Sprintf("Local value %q depends on itself: %s. Break the cycle by computing one of them without the others.",
						m, strings.Join(refs, " -> "))))
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		sorted = append(sorted, n)
	}
	for _, n := range order {
		if state[n] == unvisited {
			visit(n)
		}
	}

	for _, n := range sorted {
		if inCycle[n] {
			continue
		}
		if v, ok := s.eval(byName[n].Expr, cty.DynamicPseudoType, fmt.Sprintf("local value %q", n), &diags); ok {
			s.setLocal(n, v)
		}
	}
	return diags
}

package address

import "github.com/unikfile/unikfile/state"

// Instances keeps the instances the addresses name: those of the projects
// in the addressed directories (relative to base), and of the named target
// or app when an address names one.
func Instances(addrs []Address, base string, insts []*state.Instance) []*state.Instance {
	var out []*state.Instance
	for _, i := range insts {
		for _, a := range addrs {
			if a.MatchesDir(base, base, i.Project) && (a.Name == "" || a.Name == i.Target || a.Name == i.App) {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// TargetRef is a target of a project as `down` takes it down; an empty
// Target means every target of Project.
type TargetRef struct {
	Project, Target string
}

// TargetsOf names, from instance records alone (no Unikfile is read), the
// targets the addresses name that have instances, once each, in the
// order of insts.
func TargetsOf(addrs []Address, base string, insts []*state.Instance) []TargetRef {
	var out []TargetRef
	seen := map[TargetRef]bool{}
	for _, i := range insts {
		for _, a := range addrs {
			if !a.MatchesDir(base, base, i.Project) || (a.Name != "" && a.Name != i.Target) {
				continue
			}
			r := TargetRef{i.Project, a.Name}
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

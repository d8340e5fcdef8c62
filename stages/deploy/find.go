package deploy

import (
	"context"
	"fmt"

	"github.com/unikfile/unikfile/state"
)

// Find resolves ref, an instance ID or the name of an app of project, to
// one instance (refreshed): the ID's, else the app's running instance,
// else its newest. It is what `logs APP|INSTANCE` shows.
func Find(ctx context.Context, store *state.Store, reg Registry, project, ref string) (*state.Instance, error) {
	if inst, err := store.Get(ref); err == nil && inst != nil {
		return inst, nil
	}
	insts, err := List(ctx, store, reg, state.Filter{Project: project, App: ref})
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("no instance of app %q in %s (and no instance with that ID); see `unikfile ps`", ref, project)
	}
	best := insts[len(insts)-1]
	for _, i := range insts {
		if i.State == state.Running {
			best = i
		}
	}
	return best, nil
}

// StrayTargets are the targets of project that have live instances but
// that declared does not know (a target renamed or removed from the
// Unikfile): up does not remove them on its own, since a rename is a
// guess, but the user should know they still run. Sorted by first
// instance.
func StrayTargets(store *state.Store, project string, declared func(target string) bool) ([]string, error) {
	insts, err := store.List(state.Filter{Project: project})
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, i := range insts {
		if i.Alive() && !declared(i.Target) && !seen[i.Target] {
			seen[i.Target] = true
			out = append(out, i.Target)
		}
	}
	return out, nil
}

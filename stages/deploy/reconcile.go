package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/unikfile/unikfile/state"
)

// Actions reported in a Result.
const (
	ActionStarted   = "started"   // booted; there was nothing running before
	ActionReplaced  = "replaced"  // booted; the previous instances were stopped and removed
	ActionUnchanged = "unchanged" // an instance of the same image was already running
	ActionExited    = "exited"    // the app exited (before it was ready, or when attached)
	ActionStopped   = "stopped"   // attached and stopped by cancellation
	ActionFailed    = "failed"    // it could not be booted; see the error
	ActionRemoved   = "removed"   // down, or the app left the target: stopped and removed
)

// Result is what happened to one app's instance.
type Result struct {
	Target string `json:"target"`
	App    string `json:"app"`
	Action string `json:"action"`
	// Instance is the instance now recorded for the app; for Down, the
	// instance as it was when removed (State stopped or exited). It is nil
	// when a boot failed without leaving an instance.
	Instance *state.Instance `json:"instance"`
	// Removed are the IDs of instances stopped and removed on the way.
	Removed []string `json:"removed,omitempty"`
}

// providers constructs each provider once per reconciler call.
type providers struct {
	reg Registry
	env Env
	mu  sync.Mutex
	m   map[string]Provider
}

func newProviders(reg Registry, store *state.Store) *providers {
	return &providers{reg: reg, env: Env{StateDir: store.Dir()}, m: map[string]Provider{}}
}

func (ps *providers) get(name string) (Provider, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.m[name]; ok {
		return p, nil
	}
	p, err := ps.reg.New(name, ps.env)
	if err != nil {
		return nil, err
	}
	ps.m[name] = p
	return p, nil
}

// errStale tells refresh's Update that the record changed under it.
var errStale = errors.New("record changed meanwhile")

// refresh asks the provider what inst is doing now and writes a change back,
// unless another command changed the record in the meantime (then that
// command knows better).
func refresh(ctx context.Context, store *state.Store, ps *providers, inst *state.Instance) error {
	p, err := ps.get(inst.Provider)
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	before, beforeStatus, beforePID, hadConfig := inst.State, inst.ExitStatus, inst.PID, len(inst.Config) > 0
	if err := p.Refresh(ctx, inst); err != nil {
		return fmt.Errorf("instance %s: refresh: %w", inst.ID, err)
	}
	gotConfig := !hadConfig && len(inst.Config) > 0
	if inst.State == before && sameStatus(inst.ExitStatus, beforeStatus) && inst.PID == beforePID && !gotConfig {
		return nil
	}
	err = store.Update(inst.ID, func(cur *state.Instance) error {
		if cur.State != before {
			return errStale
		}
		cur.State, cur.ExitStatus, cur.PID = inst.State, inst.ExitStatus, inst.PID
		if gotConfig && len(cur.Config) == 0 {
			cur.Config, cur.Ports = inst.Config, inst.Ports
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStale) && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	return nil
}

func sameStatus(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// List refreshes the instances that match f and returns them, oldest first.
// Instances that cannot be refreshed are returned as recorded, and the
// errors joined.
func List(ctx context.Context, store *state.Store, reg Registry, f state.Filter) ([]*state.Instance, error) {
	insts, err := store.List(f)
	if err != nil {
		return nil, err
	}
	ps := newProviders(reg, store)
	var errs []error
	for _, inst := range insts {
		if err := refresh(ctx, store, ps, inst); err != nil {
			errs = append(errs, err)
		}
	}
	return insts, errors.Join(errs...)
}

// Logs copies the console of inst to w through its provider, following it
// when follow is set (see Provider.Logs).
func Logs(ctx context.Context, store *state.Store, reg Registry, inst *state.Instance, follow bool, w io.Writer) error {
	p, err := newProviders(reg, store).get(inst.Provider)
	if err != nil {
		return err
	}
	return p.Logs(ctx, inst, follow, w)
}

// Down stops and removes the instances of project (of targetName only,
// unless it is empty): their processes, run directories and records. It
// takes the project's lock.
func Down(ctx context.Context, store *state.Store, reg Registry, project, targetName string) ([]Result, error) {
	unlock, err := store.Lock(ctx, project)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := checkNotWatched(store, project, targetName, "down"); err != nil {
		return nil, err
	}
	insts, err := store.List(state.Filter{Project: project, Target: targetName})
	if err != nil {
		return nil, err
	}
	ps := newProviders(reg, store)
	results := make([]Result, len(insts))
	errs := make([]error, len(insts))
	var wg sync.WaitGroup
	for i, inst := range insts {
		results[i] = Result{Target: inst.Target, App: inst.App, Action: ActionFailed, Instance: inst}
		wg.Go(func() {
			if err := remove(ctx, store, ps, inst); err != nil {
				errs[i] = err
				return
			}
			results[i] = Result{Target: inst.Target, App: inst.App, Action: ActionRemoved, Instance: inst, Removed: []string{inst.ID}}
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// remove stops inst and deletes its run directory and record.
func remove(ctx context.Context, store *state.Store, ps *providers, inst *state.Instance) error {
	p, err := ps.get(inst.Provider)
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	return Remove(ctx, store, p, inst)
}

// Remove stops inst through its provider p and deletes its run directory
// and record (a record already gone is not an error). The reconciler and
// the watch loop remove instances with it.
func Remove(ctx context.Context, store *state.Store, p Provider, inst *state.Instance) error {
	if err := p.Stop(ctx, inst); err != nil {
		return fmt.Errorf("instance %s: stop: %w", inst.ID, err)
	}
	if err := removeRunDir(inst); err != nil {
		return err
	}
	if err := store.Delete(inst.ID); err != nil && !errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	return nil
}

// removeRunDir deletes inst's run directory, refusing anything that does not
// look like one (an absolute path whose last element is the instance's ID),
// so that a damaged record cannot make it delete something else.
func removeRunDir(inst *state.Instance) error {
	if inst.RunDir == "" {
		return nil
	}
	if !filepath.IsAbs(inst.RunDir) || filepath.Base(inst.RunDir) != inst.ID {
		return fmt.Errorf("instance %s: refusing to remove run directory %q: not <run root>/%s", inst.ID, inst.RunDir, inst.ID)
	}
	if err := os.RemoveAll(inst.RunDir); err != nil {
		return fmt.Errorf("instance %s: remove run directory: %w", inst.ID, err)
	}
	return nil
}

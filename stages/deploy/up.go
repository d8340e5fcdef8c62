package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// AppImage is the image to run for one app.
type AppImage struct {
	Image *pack.Image
	// Dir is the image directory; Image's files are relative to it.
	Dir string
}

// UpRequest asks Up to bring a target's apps up to date.
type UpRequest struct {
	// Project is the absolute directory of the Unikfile.
	Project string
	Target  *lang.Target
	// Apps holds the apps' models by name; optional (a provider then works
	// from the image alone).
	Apps map[string]*lang.App
	// Images holds the image of every app of Target, by app name.
	Images map[string]AppImage
	// RunRoot is where instances' run directories are created, one per
	// instance ID; "" means <state dir>/instances.
	RunRoot string
	// Timeout bounds each boot's wait for readiness; 0 is the provider's
	// default.
	Timeout time.Duration
	// Attach runs in the foreground: console lines go to Console and Up
	// returns when every app's guest has exited; ctx's end stops them.
	// Console gets whole lines, one write at a time, prefixed with the app's
	// name when the target has several apps.
	Attach  bool
	Console io.Writer
	// Progress receives one-line messages for the user; nil discards them.
	Progress func(msg string)
}

func (r *UpRequest) say(format string, args ...any) {
	if r.Progress != nil {
		r.Progress(fmt.Sprintf(format, args...))
	}
}

// Up brings the apps of req.Target to the given images, concurrently, under
// the project's lock. Instances of apps the target no longer lists are
// removed first ("removed"). For each app: an instance of the same image
// and settings (SettingsDigest) already running is left alone
// ("unchanged"); otherwise a new instance is booted, and only once it is
// ready are the app's previous instances stopped and removed ("replaced",
// or "started" when none was running). A failed boot leaves the previous
// instances as they were. Results: the removed apps, then the target's
// apps in order; errors are joined.
//
// When attached, the lock is released once every app is ready (or failed),
// so that other commands on the project can go on while the guests run.
func Up(ctx context.Context, store *state.Store, reg Registry, req UpRequest) ([]Result, error) {
	if req.Target == nil {
		return nil, errors.New("up: no target given")
	}
	if !filepath.IsAbs(req.Project) {
		return nil, fmt.Errorf("up: project directory %q is not absolute", req.Project)
	}
	for _, name := range req.Target.Apps {
		if img, ok := req.Images[name]; !ok || img.Image == nil {
			return nil, fmt.Errorf("up: target %s: no image for app %s", req.Target.Name, name)
		}
	}
	if req.RunRoot == "" {
		req.RunRoot = filepath.Join(store.Dir(), "instances")
	}
	ps := newProviders(reg, store)
	if _, err := ps.get(req.Target.Provider); err != nil {
		return nil, fmt.Errorf("up: target %s: %w", req.Target.Name, err)
	}

	unlock, ok, err := store.TryLock(req.Project)
	if err != nil {
		return nil, err
	}
	if !ok {
		if pid := store.LockHolder(req.Project); pid != 0 {
			req.say("waiting for another unikfile on this project (pid %d)", pid)
		} else {
			req.say("waiting for another unikfile on this project")
		}
		if unlock, err = store.Lock(ctx, req.Project); err != nil {
			return nil, err
		}
	}
	defer unlock()
	if err := checkNotWatched(store, req.Project, req.Target.Name, "up"); err != nil {
		return nil, err
	}

	// The target is declarative: instances of apps it no longer lists go,
	// under the lock, before anything of this run boots.
	stale, pruneErr := pruneApps(ctx, store, ps, &req)

	apps := req.Target.Apps
	var mux *consoleMux
	if req.Attach && req.Console != nil {
		mux = newConsoleMux(req.Console, apps)
	}
	results := make([]Result, len(apps))
	errs := make([]error, len(apps))
	var settled, done sync.WaitGroup
	settled.Add(len(apps))
	for i, name := range apps {
		done.Go(func() {
			var once sync.Once
			settle := func() { once.Do(settled.Done) }
			defer settle()
			var console io.Writer
			if mux != nil {
				w := mux.writer(name)
				defer w.flush()
				console = w
			}
			results[i], errs[i] = upApp(ctx, store, ps, &req, name, console, settle)
		})
	}
	go func() {
		settled.Wait()
		unlock()
	}()
	done.Wait()
	return append(stale, results...), errors.Join(append(errs, pruneErr)...)
}

// upApp reconciles one app. settle is called once the app no longer needs
// the project's lock: when it is ready, unchanged or failed.
func upApp(ctx context.Context, store *state.Store, ps *providers, req *UpRequest, name string, console io.Writer, settle func()) (Result, error) {
	img := req.Images[name]
	res := Result{Target: req.Target.Name, App: name, Action: ActionFailed}
	fail := func(err error) (Result, error) {
		return res, fmt.Errorf("app %s: %w", name, err)
	}
	p, err := ps.get(req.Target.Provider)
	if err != nil {
		return fail(err)
	}
	if err := CheckImage(req.Target.Provider, p, img.Image); err != nil {
		return fail(err)
	}
	existing, err := store.List(state.Filter{Project: req.Project, Target: req.Target.Name, App: name})
	if err != nil {
		return fail(err)
	}
	// Under the project's lock nothing else is booting this app, so an
	// instance recorded as still starting was left by an `up` that died
	// (maybe half-way through replacing another, on a temporary port):
	// remove it, judging by the record before a refresh could call it
	// running.
	kept := existing[:0]
	for _, inst := range existing {
		if inst.State != state.Starting {
			kept = append(kept, inst)
			continue
		}
		if err := remove(ctx, store, ps, inst); err != nil {
			return fail(err)
		}
		res.Removed = append(res.Removed, inst.ID)
	}
	existing = kept
	var errs []error
	for _, inst := range existing {
		if err := refresh(ctx, store, ps, inst); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fail(errors.Join(errs...))
	}
	forwards, _ := Forwards(req.Target, req.Apps[name], img.Image)
	settings := SettingsDigest(req.Target, req.Apps[name], forwards)
	for _, inst := range existing {
		if inst.State == state.Running && inst.Provider == req.Target.Provider &&
			inst.ImageDigest == img.Image.Digest && inst.SettingsDigest == settings {
			res.Action, res.Instance = ActionUnchanged, inst
			// Others of the app are leftovers (an `up` killed while it
			// stopped them after a replacement): they go.
			for _, other := range existing {
				if other.ID == inst.ID {
					continue
				}
				if err := remove(ctx, store, ps, other); err != nil {
					return fail(err)
				}
				res.Removed = append(res.Removed, other.ID)
			}
			settle()
			if req.Attach {
				return attachExisting(ctx, store, ps, p, console, res)
			}
			return res, nil
		}
	}

	// Records of instances that are gone (exited, stopped, failed) make way
	// for the new one, so that failed attempts do not pile up.
	kept = existing[:0]
	for _, inst := range existing {
		if inst.Alive() {
			kept = append(kept, inst)
			continue
		}
		if err := remove(ctx, store, ps, inst); err != nil {
			return fail(err)
		}
	}
	existing = kept

	id := state.NewID(name)
	inst := &state.Instance{
		ID: id, Project: req.Project, Target: req.Target.Name, App: name, Provider: req.Target.Provider,
		ImageDigest: img.Image.Digest, SettingsDigest: settings, ImageDir: img.Dir, RunDir: filepath.Join(req.RunRoot, id),
		State: state.Starting, Created: time.Now().UTC(),
	}
	// Recorded before the boot, so that a crash of this process leaves a
	// record that ps shows and down removes.
	if err := store.Put(inst); err != nil {
		return fail(err)
	}
	var replaced bool
	var bootStart time.Time
	spec := Spec{
		Project: req.Project, Target: req.Target, App: req.Apps[name], Image: img.Image, ImageDir: img.Dir,
		Forwards: forwards, RunDir: inst.RunDir, ID: id, Timeout: req.Timeout,
		Attach: req.Attach, Console: console, Progress: req.Progress,
		Replaces: alive(existing),
		Ready: func(ready *state.Instance) error {
			req.say("%s: ready after %s", name, time.Since(bootStart).Round(10*time.Millisecond))
			ready.Created, ready.SettingsDigest = inst.Created, settings
			if err := store.Put(ready); err != nil {
				return err
			}
			var errs []error
			for _, old := range existing {
				wasAlive := old.Alive()
				// The old instances go whatever happens to ctx now: the new
				// one is serving in their place.
				if err := remove(context.WithoutCancel(ctx), store, ps, old); err != nil {
					errs = append(errs, err)
					continue
				}
				res.Removed = append(res.Removed, old.ID)
				replaced = replaced || wasAlive
			}
			if req.Attach {
				// The guest runs until it exits; other commands on the
				// project need not wait that long.
				settle()
			}
			return errors.Join(errs...)
		},
	}
	if len(spec.Replaces) > 0 {
		req.say("%s: booting image %.12s to replace %s", name, img.Image.Digest, spec.Replaces[0].ID)
	} else {
		req.say("%s: booting image %.12s", name, img.Image.Digest)
	}
	bootStart = time.Now()
	booted, err := p.Boot(ctx, spec)
	if booted != nil {
		booted.Created, booted.SettingsDigest = inst.Created, settings
	}
	if err != nil {
		settle()
		var pe *PortInUseError
		if errors.As(err, &pe) && pe.Holder == "" {
			pe.Holder = portHolder(store, pe.Port)
		}
		if booted != nil {
			res.Instance = booted
			if booted.State == state.Exited {
				res.Action = ActionExited
			}
			if perr := store.Put(booted); perr != nil {
				err = errors.Join(err, perr)
			}
		} else if derr := store.Delete(id); derr != nil {
			err = errors.Join(err, derr)
		}
		return res, err // the provider's errors name the app
	}
	res.Instance = booted
	switch {
	case booted.State == state.Exited:
		res.Action = ActionExited
	case booted.State == state.Stopped:
		res.Action = ActionStopped
	case replaced:
		res.Action = ActionReplaced
	default:
		res.Action = ActionStarted
	}
	if err := store.Put(booted); err != nil {
		return res, fmt.Errorf("app %s: %w", name, err)
	}
	return res, nil
}

// attachExisting follows the console of an instance that was already
// running until it stops or ctx ends. It does not stop it: this command did
// not start it.
func attachExisting(ctx context.Context, store *state.Store, ps *providers, p Provider, w io.Writer, res Result) (Result, error) {
	if w == nil {
		w = io.Discard
	}
	if err := p.Logs(ctx, res.Instance, true, w); err != nil && ctx.Err() == nil {
		return res, fmt.Errorf("app %s: %w", res.App, err)
	}
	if err := refresh(context.WithoutCancel(ctx), store, ps, res.Instance); err != nil {
		return res, fmt.Errorf("app %s: %w", res.App, err)
	}
	return res, ctx.Err()
}

func alive(insts []*state.Instance) []*state.Instance {
	var out []*state.Instance
	for _, i := range insts {
		if i.Alive() {
			out = append(out, i)
		}
	}
	return out
}

// portHolder describes the live unikfile instance that forwards host port,
// or returns "".
func portHolder(store *state.Store, port int) string {
	insts, err := store.List(state.Filter{})
	if err != nil {
		return ""
	}
	for _, inst := range insts {
		if !inst.Alive() {
			continue
		}
		for _, p := range inst.Ports {
			if p.Host == port {
				return fmt.Sprintf("unikfile instance %s (app %s, target %s, project %s)", inst.ID, inst.App, inst.Target, inst.Project)
			}
		}
	}
	return ""
}

// SettingsDigest digests what of the target and app shapes the app's
// running instance besides its image: the provider, what its settings say
// shapes every instance (TargetSettings.Redeploy), the app's memory, and
// forwards, the host addresses of the app's ports (nil when something
// else owns them, as watch's forwarder does). Settings of the target that
// concern other apps (their host ports) are left out, so changing them
// does not restart this one. up and watch both decide with it.
func SettingsDigest(t *lang.Target, a *lang.App, forwards []lang.Forward) string {
	v := struct {
		Provider  string
		Settings  any
		MemoryMiB int
		Forwards  []lang.Forward
	}{Provider: t.Provider, Forwards: forwards}
	if t.Settings != nil {
		v.Settings = t.Settings.Redeploy()
	}
	if a != nil {
		v.MemoryMiB = a.MemoryMiB
	}
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// pruneApps removes the target's instances of apps it no longer lists,
// all at once (each may wait for its app to shut down).
func pruneApps(ctx context.Context, store *state.Store, ps *providers, req *UpRequest) ([]Result, error) {
	insts, err := store.List(state.Filter{Project: req.Project, Target: req.Target.Name})
	if err != nil {
		return nil, err
	}
	var stale []*state.Instance
	for _, inst := range insts {
		if !slices.Contains(req.Target.Apps, inst.App) {
			stale = append(stale, inst)
		}
	}
	results := make([]Result, len(stale))
	errs := make([]error, len(stale))
	var wg sync.WaitGroup
	for i, inst := range stale {
		wg.Go(func() {
			if err := remove(ctx, store, ps, inst); err != nil {
				errs[i] = fmt.Errorf("app %s is no longer in target %s, but removing %s failed: %w", inst.App, req.Target.Name, inst.ID, err)
				return
			}
			req.say("%s: no longer in target %s; removed %s", inst.App, req.Target.Name, inst.ID)
			results[i] = Result{Target: req.Target.Name, App: inst.App, Action: ActionRemoved, Instance: inst}
		})
	}
	wg.Wait()
	var out []Result
	for _, r := range results {
		if r.Instance != nil {
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

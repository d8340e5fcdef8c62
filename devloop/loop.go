package devloop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unikfile/unikfile/cache/gc"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/pipeline"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/forward"
	"github.com/unikfile/unikfile/state"
	"github.com/unikfile/unikfile/watch"
)

// DefaultDrain bounds how long an old VM's open connections may go on
// after a swap before they are closed and the VM is stopped.
const DefaultDrain = 10 * time.Second

// internalBind is where watch's VMs forward their ports: only the
// forwarder connects to them.
const internalBind = "127.0.0.1"

// Options configure a watch.
type Options struct {
	// File is the Unikfile (absolute); Vars its --var values.
	File string
	Vars map[string]string
	// Target names the target to run; "" means the project's only QEMU
	// target.
	Target string
	// Env gives the cache and the state store (State and StateDir must be
	// set). Env.Log receives the compilers' output.
	Env *pipeline.Env
	// Registry constructs the target's provider; Catalog is what the
	// Unikfile may name (stages/registry).
	Registry deploy.Registry
	Catalog  *lang.Catalog
	Jobs     int
	// Quiet and MaxDelay shape coalescing (see package watch); Drain bounds
	// the wait for an old VM's open connections; Timeout bounds each boot.
	Quiet, MaxDelay, Drain, Timeout time.Duration
	// Exclude are folders never watched: where unikfile writes (its cache
	// and state directories) when they lie inside the project.
	Exclude []string
	// OnEvent receives every event, from one goroutine at a time.
	OnEvent func(Event)
	// Console receives the apps' console lines, "app | line".
	Console io.Writer
	// CacheLimits are the cache's automatic limits, applied after builds
	// (zero: none).
	CacheLimits gc.Limits
}

// loop is one run of Run. Only Run's goroutine touches its fields, except
// where noted.
type loop struct {
	opts     Options
	ctx      context.Context
	store    *state.Store
	provider deploy.Provider

	project *lang.Project
	target  *lang.Target
	scope   *scope
	watcher *watch.Watcher
	apps    map[string]*app
	results chan jobResult
	jobSeq  int
	// outstanding counts job goroutines whose result is not received yet.
	outstanding int
	bg          sync.WaitGroup // retiring VMs, console followers, finished jobs

	// release gives up the target's claim (state.ClaimTarget) when the
	// loop ends.
	release func()

	emitMu  sync.Mutex
	console *prefixer
	notes   sync.Map // messages already shown once
}

// app is one app of the target as the loop runs it.
type app struct {
	name string
	def  *lang.App
	// hosts maps each guest port to its host address (bind:port); fw holds
	// the forwarders listening there.
	hosts map[int]string
	fw    map[int]*forward.Forwarder
	cur   *vm
	job   *job
}

type vm struct {
	inst *state.Instance
	// ports maps guest ports to the internal host ports QEMU forwards.
	ports map[int]int
	// key is servingKey of what it runs.
	key string
	// ended is set when the VM stopped by itself: a rebuild of the same
	// image boots it again.
	ended atomic.Bool
	// retired is set once the loop stops the VM on purpose.
	retired atomic.Bool
}

// oldBackend is a VM's port behind a forwarder, to drain after a swap.
type oldBackend struct {
	f *forward.Forwarder
	b *forward.Backend
}

type job struct {
	id      int
	cancel  context.CancelFunc
	started time.Time
}

type jobResult struct {
	app       string
	id        int
	vm        *vm
	image     string
	err       error
	cancelled bool
	unchanged bool          // the image and settings are those of the VM serving
	built     time.Duration // build time
	boot      time.Duration
	started   time.Time
}

// Run builds and boots the target, then follows edits until ctx ends; then
// it stops every VM it started and returns nil. Errors before the first
// build (a bad Unikfile, a taken host port, an inotify limit, a target
// another command runs) are returned.
func Run(ctx context.Context, opts Options) error {
	if opts.Env == nil || opts.Env.State == nil {
		return errors.New("watch: no state store")
	}
	if opts.Drain <= 0 {
		opts.Drain = DefaultDrain
	}
	l := &loop{opts: opts, ctx: ctx, store: opts.Env.State, apps: map[string]*app{}, results: make(chan jobResult)}
	if opts.Console != nil {
		l.console = &prefixer{w: opts.Console}
	}
	p, err := l.load()
	if err != nil {
		return err
	}
	t, err := pickTarget(p, opts.Target)
	if err != nil {
		return err
	}
	prov, err := opts.Registry.New(t.Provider, deploy.Env{StateDir: opts.Env.StateDir})
	if err != nil {
		return err
	}
	l.provider = prov
	defer func() {
		if l.release != nil {
			l.release()
		}
	}()
	if err := l.claim(p, t); err != nil {
		return err
	}
	defer l.shutdown()
	if err := l.adopt(p, t); err != nil {
		return err
	}
	l.emit(Event{Kind: EventWatching, Message: p.Dir, Apps: t.Apps})
	for _, name := range t.Apps {
		l.start(name)
	}
	l.run()
	return nil
}

func (l *loop) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	if l.opts.OnEvent != nil {
		l.opts.OnEvent(e)
	}
}

// note shows a provider's or stage's message once (the emulation warning
// would otherwise repeat at every boot).
func (l *loop) note(app, msg string) {
	if _, seen := l.notes.LoadOrStore(msg, true); seen {
		return
	}
	l.emit(Event{Kind: EventNote, App: app, Message: msg})
}

// run is the event loop: changes, finished jobs, the end.
func (l *loop) run() {
	for {
		var changes <-chan []string
		var werrs <-chan error
		if l.watcher != nil {
			changes, werrs = l.watcher.Changes(), l.watcher.Errors()
		}
		select {
		case <-l.ctx.Done():
			return
		case paths := <-changes:
			l.changed(paths)
		case err := <-werrs:
			l.emit(Event{Kind: EventError, Error: err.Error()})
		case r := <-l.results:
			l.outstanding--
			l.finished(r)
		}
	}
}

// changed handles one coalesced batch of changed paths.
func (l *loop) changed(paths []string) {
	var rel []string
	affected := map[string]bool{}
	reload := false
	for _, p := range paths {
		if p == l.project.File || l.scope.ignoreFile(p) {
			reload = true
		}
		for _, a := range l.scope.affected(p) {
			affected[a] = true
		}
		r, err := filepath.Rel(l.project.Dir, p)
		if err != nil {
			r = p
		}
		rel = append(rel, r)
	}
	if len(affected) == 0 && !reload {
		return
	}
	names := sortedKeys(affected)
	l.emit(Event{Kind: EventChange, Paths: rel, Apps: names})
	if reload {
		for _, a := range l.reload() {
			affected[a] = true
		}
	}
	for _, name := range l.target.Apps {
		if affected[name] {
			l.start(name)
		}
	}
}

// reload reads the Unikfile again. A bad one is reported and changes
// nothing. It returns the apps to rebuild: those whose definition or host
// ports changed, and new ones. Apps that left the target are stopped.
func (l *loop) reload() []string {
	p, err := l.load()
	if err == nil {
		var t *lang.Target
		if t, err = pickTarget(p, l.target.Name); err == nil {
			oldT, oldApps := l.target, l.apps
			oldDefs := map[string]*lang.App{}
			oldHosts := map[string]map[int]string{}
			for n, a := range oldApps {
				oldDefs[n], oldHosts[n] = a.def, a.hosts
			}
			if err = l.adopt(p, t); err == nil {
				l.emit(Event{Kind: EventReloaded, Message: p.File})
				var out []string
				for _, name := range t.Apps {
					if !sameApp(oldDefs[name], p.App(name)) || !reflect.DeepEqual(oldHosts[name], l.apps[name].hosts) || !sameSettings(oldT, t, p.App(name)) {
						out = append(out, name)
					}
				}
				for name := range oldApps {
					if !slices.Contains(t.Apps, name) {
						l.drop(name)
					}
				}
				return out
			}
		}
	}
	l.emit(Event{Kind: EventUnikfileError, Error: err.Error(), Message: "the previous version keeps running; fix the Unikfile and save it again"})
	return nil
}

// sameApp compares two app definitions, ignoring where they are written.
func sameApp(a, b *lang.App) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Range = y.Range
	return reflect.DeepEqual(x, y)
}

// sameSettings compares the target settings that shape app's VM.
func sameSettings(a, b *lang.Target, app *lang.App) bool {
	return deploy.SettingsDigest(a, app, nil) == deploy.SettingsDigest(b, app, nil)
}

// drop stops an app that left the target and closes its forwarders.
func (l *loop) drop(name string) {
	a := l.apps[name]
	delete(l.apps, name)
	if a.job != nil {
		a.job.cancel()
	}
	for _, f := range a.fw {
		_ = f.Close()
	}
	if a.cur != nil {
		cur := a.cur
		l.bg.Go(func() { l.retire(name, cur, nil) })
	}
	l.emit(Event{Kind: EventRemoved, App: name, Message: "no longer in target " + l.target.Name})
}

// start (re)starts the build and boot of app, cancelling one in flight.
func (l *loop) start(name string) {
	a := l.apps[name]
	if a.job != nil {
		a.job.cancel()
		l.emit(Event{Kind: EventBuildCancel, App: name, Duration: time.Since(a.job.started), Message: "a newer change supersedes it"})
	}
	l.jobSeq++
	l.outstanding++
	ctx, cancel := context.WithCancel(l.ctx)
	j := &job{id: l.jobSeq, cancel: cancel, started: time.Now()}
	a.job = j
	p, t, def := l.project, l.target, a.def
	serving := ""
	if a.cur != nil && !a.cur.ended.Load() {
		serving = a.cur.key
	}
	l.emit(Event{Kind: EventBuildStarted, App: name})
	go func() {
		r := l.buildAndBoot(ctx, p, t, def, serving)
		r.app, r.id, r.started = name, j.id, j.started
		l.results <- r
	}()
}

// finished takes a job's result: a superseded job's VM is stopped; a
// failure is reported (the old version keeps serving); a ready VM takes
// over the app's host ports.
func (l *loop) finished(r jobResult) {
	a := l.apps[r.app]
	current := a != nil && a.job != nil && a.job.id == r.id
	if !current {
		if r.vm != nil {
			l.bg.Go(func() { l.retire(r.app, r.vm, nil) })
		}
		return
	}
	a.job.cancel()
	a.job = nil
	switch {
	case r.cancelled:
		// Reported when it was cancelled.
	case r.unchanged:
		l.emit(Event{Kind: EventUnchanged, App: r.app, Image: short(r.image), Instance: a.cur.inst.ID})
	case r.err != nil && r.image == "":
		l.emit(Event{Kind: EventBuildFailed, App: r.app, Duration: r.built, Error: r.err.Error(), Message: l.keeps(a)})
	case r.err != nil:
		l.emit(Event{Kind: EventBootFailed, App: r.app, Image: r.image, Duration: r.boot, Error: r.err.Error(), Message: l.keeps(a)})
	default:
		l.swap(a, r)
	}
}

func (l *loop) keeps(a *app) string {
	if a.cur != nil {
		return fmt.Sprintf("%s keeps serving", a.cur.inst.ID)
	}
	return "nothing serves yet; save a fix"
}

// swap points the app's forwarders at the new VM and retires the old one.
func (l *loop) swap(a *app, r jobResult) {
	old := a.cur
	var backends []oldBackend
	var urls []string
	for g, f := range a.fw {
		if b := f.Switch(net.JoinHostPort(internalBind, strconv.Itoa(r.vm.ports[g]))); b != nil {
			backends = append(backends, oldBackend{f, b})
		}
		urls = append(urls, "http://"+urlAddr(a.hosts[g])+"/")
	}
	slices.Sort(urls)
	a.cur = r.vm
	ev := Event{Kind: EventSwapped, App: a.name, Instance: r.vm.inst.ID, Image: r.image, URL: strings.Join(urls, " "),
		Duration: time.Since(r.started), Boot: r.boot}
	if old != nil {
		ev.Replaced = old.inst.ID
	}
	l.emit(ev)
	l.follow(a.name, r.vm)
	if old != nil {
		l.bg.Go(func() { l.retire(a.name, old, backends) })
	}
}

// shutdown cancels every job, stops every VM and closes every port.
func (l *loop) shutdown() {
	for _, a := range l.apps {
		if a.job != nil {
			a.job.cancel()
		}
	}
	// Jobs end promptly once cancelled (the compiler's process group is
	// killed, a boot in progress stops its VM); a VM one of them finished
	// booting meanwhile is stopped like the others.
	for ; l.outstanding > 0; l.outstanding-- {
		r := <-l.results
		if r.vm != nil {
			l.bg.Go(func() { l.retire(r.app, r.vm, nil) })
		}
	}
	if l.watcher != nil {
		_ = l.watcher.Close()
	}
	for _, a := range l.apps {
		for _, f := range a.fw {
			_ = f.Close()
		}
		if a.cur != nil {
			cur := a.cur
			l.bg.Go(func() { l.retire(a.name, cur, nil) })
		}
	}
	l.bg.Wait()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

package devloop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unikfile/unikfile/graph"
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
	// Registry constructs the target's provider.
	Registry deploy.Registry
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

// load reads the Unikfile; diagnostics become the error's text.
func (l *loop) load() (*lang.Project, error) {
	p, src, diags := lang.Load(l.opts.File, lang.Options{Vars: l.opts.Vars})
	if diags.HasErrors() {
		var b bytes.Buffer
		_ = lang.WriteDiagnostics(&b, diags, src, false)
		return nil, &UnikfileError{Text: strings.TrimRight(b.String(), "\n"), Diags: diags}
	}
	return p, nil
}

// UnikfileError is a Unikfile with errors; Text is the rendered diagnostics.
type UnikfileError struct {
	Text  string
	Diags error
}

func (e *UnikfileError) Error() string { return e.Text }
func (e *UnikfileError) Unwrap() error { return e.Diags }

// pickTarget returns the named target, or the only QEMU one.
func pickTarget(p *lang.Project, name string) (*lang.Target, error) {
	if name != "" {
		t := p.Target(name)
		if t == nil {
			return nil, fmt.Errorf("no target named %q in %s; targets: %s", name, p.File, strings.Join(targetNames(p.Targets), ", "))
		}
		if t.Provider != "qemu" {
			return nil, fmt.Errorf("target %s uses provider %q; watch runs QEMU targets (on this machine), name one of: %s", name, t.Provider, strings.Join(targetNames(qemuTargets(p)), ", "))
		}
		return t, nil
	}
	qs := qemuTargets(p)
	switch len(qs) {
	case 1:
		return qs[0], nil
	case 0:
		return nil, fmt.Errorf("%s has no target with provider \"qemu\"; watch runs apps in local QEMU: add one, e.g. target \"dev\" { provider = \"qemu\" apps = [app.NAME] }", p.File)
	}
	return nil, fmt.Errorf("%s has several QEMU targets; name the one to watch: unikfile watch %s", p.File, strings.Join(targetNames(qs), "|"))
}

func qemuTargets(p *lang.Project) []*lang.Target {
	var out []*lang.Target
	for _, t := range p.Targets {
		if t.Provider == "qemu" {
			out = append(out, t)
		}
	}
	return out
}

func targetNames(ts []*lang.Target) []string {
	var n []string
	for _, t := range ts {
		n = append(n, t.Name)
	}
	return n
}

// claim makes sure nothing else runs the target: instances of `unikfile
// up` make watch refuse (it would have to take their ports), another live
// watch too; instances of a watch that died are stopped and removed.
func (l *loop) claim(p *lang.Project, t *lang.Target) error {
	unlock, err := l.store.Lock(l.ctx, p.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	insts, err := l.store.List(state.Filter{Project: p.Dir, Target: t.Name})
	if err != nil {
		return err
	}
	for _, inst := range insts {
		if err := l.provider.Refresh(l.ctx, inst); err != nil {
			return err
		}
		switch {
		case inst.WatchPID != 0 && deploy.WatcherAlive(inst):
			return fmt.Errorf("target %s is already watched by another `unikfile watch` (pid %d); stop that one first (Ctrl-C in its terminal)", t.Name, inst.WatchPID)
		case inst.WatchPID == 0 && inst.Alive():
			return fmt.Errorf("target %s has instances started by `unikfile up` (%s, %s); watch serves the target's host ports itself: stop them with `unikfile down %s`, then run watch again",
				t.Name, inst.ID, inst.State, t.Name)
		}
	}
	for _, inst := range insts {
		// Leftovers: a watch that was killed, or records of gone VMs.
		if err := l.removeInstance(inst); err != nil {
			return err
		}
	}
	return nil
}

// adopt makes p and t the running project: forwarders for new host
// addresses are opened (a taken port is an error) and the watcher follows
// the new scope.
func (l *loop) adopt(p *lang.Project, t *lang.Target) error {
	sc, err := newScope(p, t.Apps, l.opts.Exclude)
	if err != nil {
		return err
	}
	// Open what the new target needs before giving anything up.
	hosts := map[string]map[int]string{}
	opened := map[string]map[int]*forward.Forwarder{}
	closeOpened := func() {
		for _, m := range opened {
			for _, f := range m {
				_ = f.Close()
			}
		}
	}
	for _, name := range t.Apps {
		a := p.App(name)
		hosts[name] = hostAddrs(t, a)
		opened[name] = map[int]*forward.Forwarder{}
		for g, addr := range hosts[name] {
			if cur := l.apps[name]; cur != nil && cur.hosts[g] == addr && cur.fw[g] != nil {
				continue
			}
			f, err := forward.Listen(addr)
			if err != nil {
				closeOpened()
				return &deploy.PortInUseError{App: name, Bind: hostOf(addr), Port: portOf(addr), Guest: g, Err: err}
			}
			opened[name][g] = f
			l.emit(Event{Kind: EventListening, App: name, URL: "http://" + urlAddr(addr) + "/"})
		}
	}
	// The watcher filters with the scope it was made with: a new one
	// follows new sources and ignore rules.
	w, err := watch.New(p.Dir, watch.Options{Quiet: l.opts.Quiet, MaxDelay: l.opts.MaxDelay, Ignore: sc.ignored})
	if err != nil {
		closeOpened()
		return err
	}
	if l.watcher != nil {
		_ = l.watcher.Close()
	}
	l.watcher = w
	l.project, l.target, l.scope = p, t, sc
	for _, name := range t.Apps {
		a := l.apps[name]
		if a == nil {
			a = &app{name: name, fw: map[int]*forward.Forwarder{}}
			l.apps[name] = a
		}
		a.def = p.App(name)
		a.hosts = hosts[name]
		for g, f := range a.fw {
			if _, ok := a.hosts[g]; !ok {
				_ = f.Close() // the app no longer listens there
				delete(a.fw, g)
			}
		}
		for g, f := range opened[name] {
			if old := a.fw[g]; old != nil {
				_ = old.Close() // the host port moved
			}
			a.fw[g] = f
			if a.cur != nil && a.cur.ports[g] != 0 {
				f.Switch(net.JoinHostPort(internalBind, strconv.Itoa(a.cur.ports[g])))
			}
		}
	}
	return nil
}

// hostAddrs maps the app's guest ports to the target's host addresses.
func hostAddrs(t *lang.Target, a *lang.App) map[int]string {
	bind := t.QEMU.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	m := map[int]string{}
	for _, g := range a.Ports {
		h := g
		if hp, ok := t.QEMU.HostPorts[g]; ok {
			h = hp
		}
		m[g] = net.JoinHostPort(bind, strconv.Itoa(h))
	}
	return m
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func urlAddr(addr string) string {
	if hostOf(addr) == "0.0.0.0" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(portOf(addr)))
	}
	return addr
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
					if !sameApp(oldDefs[name], p.App(name)) || !reflect.DeepEqual(oldHosts[name], l.apps[name].hosts) || !sameQEMU(oldT, t) {
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

// sameQEMU compares the target settings that shape every VM.
func sameQEMU(a, b *lang.Target) bool {
	return a.QEMU.Accel == b.QEMU.Accel && a.QEMU.CPUs == b.QEMU.CPUs
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
	l.emit(Event{Kind: EventBuildStarted, App: name})
	go func() {
		r := l.buildAndBoot(ctx, p, t, def)
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

// follow copies a VM's console to the console writer until the VM is gone,
// and reports a VM that ended by itself (the app exited or crashed).
func (l *loop) follow(name string, v *vm) {
	var w io.Writer = io.Discard
	var aw *appWriter
	if l.console != nil {
		aw = l.console.writer(name)
		w = aw
	}
	own := *v.inst // Stop writes the loop's copy meanwhile
	l.bg.Go(func() {
		ctx := context.WithoutCancel(l.ctx)
		_ = l.provider.Logs(ctx, &own, true, w)
		if aw != nil {
			aw.flush()
		}
		if v.retired.Load() {
			return
		}
		inst := own
		_ = l.provider.Refresh(ctx, &inst)
		why := "its VM stopped"
		if inst.ExitStatus != nil {
			why = fmt.Sprintf("the app exited with status %d", *inst.ExitStatus)
		}
		l.emit(Event{Kind: EventError, App: name, Instance: inst.ID, Error: why + "; nothing serves it until the next save rebuilds it"})
	})
}

// retire drains the old VM's connections (bounded) and stops it.
func (l *loop) retire(name string, v *vm, backends []oldBackend) {
	v.retired.Store(true)
	ctx := context.WithoutCancel(l.ctx)
	closed := 0
	for _, o := range backends {
		closed += o.f.Drain(ctx, o.b, l.opts.Drain)
	}
	if err := l.removeInstance(v.inst); err != nil {
		l.emit(Event{Kind: EventError, App: name, Instance: v.inst.ID, Error: err.Error()})
		return
	}
	msg := ""
	if closed > 0 {
		msg = fmt.Sprintf("%d connection(s) still open after %s were closed", closed, l.opts.Drain)
	}
	l.emit(Event{Kind: EventStopped, App: name, Instance: v.inst.ID, Message: msg})
}

// removeInstance stops a VM and removes its run directory and record.
func (l *loop) removeInstance(inst *state.Instance) error {
	ctx := context.WithoutCancel(l.ctx)
	if err := l.provider.Stop(ctx, inst); err != nil {
		return fmt.Errorf("stop %s: %w", inst.ID, err)
	}
	if inst.RunDir != "" && filepath.IsAbs(inst.RunDir) && filepath.Base(inst.RunDir) == inst.ID {
		if err := os.RemoveAll(inst.RunDir); err != nil {
			return err
		}
	}
	if err := l.store.Delete(inst.ID); err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	return nil
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

// buildAndBoot builds one app through the cached graph and boots it on
// internal ports. It runs in its own goroutine.
func (l *loop) buildAndBoot(ctx context.Context, p *lang.Project, t *lang.Target, def *lang.App) jobResult {
	start := time.Now()
	g := pipeline.BuildGraph(p, []*lang.App{def}, l.opts.Env)
	results, err := g.Run(ctx, graph.Options{Jobs: l.opts.Jobs, OnEvent: func(e graph.Event) {
		if e.Kind == graph.EventProgress {
			l.note(def.Name, e.Message)
		}
	}})
	r := jobResult{built: time.Since(start)}
	if ctx.Err() != nil {
		r.cancelled = true
		return r
	}
	var img *pipeline.Image
	for _, res := range results {
		if i, ok := res.Output.(*pipeline.Image); ok {
			img = i
		}
	}
	if err != nil || img == nil {
		if err == nil {
			err = errors.New("the build produced no image")
		}
		r.err = err
		return r
	}
	r.image = img.Image.Digest
	l.emit(Event{Kind: EventBuildDone, App: def.Name, Image: short(img.Image.Digest), Duration: r.built})
	bootStart := time.Now()
	v, err := l.boot(ctx, p, t, def, img)
	r.boot = time.Since(bootStart)
	if ctx.Err() != nil {
		if v != nil {
			_ = l.removeInstance(v.inst)
		}
		r.cancelled = true
		return r
	}
	r.vm, r.err = v, err
	return r
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// boot starts a VM of img with each guest port forwarded from a free
// internal port, recorded in the state store as the watch's.
func (l *loop) boot(ctx context.Context, p *lang.Project, t *lang.Target, def *lang.App, img *pipeline.Image) (*vm, error) {
	ports := map[int]int{}
	tt := *t
	tt.QEMU.Bind = internalBind
	tt.QEMU.HostPorts = map[int]int{}
	for _, g := range img.Image.Ports {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("app %s: pick an internal port: %w", def.Name, err)
		}
		ports[g], tt.QEMU.HostPorts[g] = port, port
	}
	id := state.NewID(def.Name)
	inst := &state.Instance{
		ID: id, Project: p.Dir, Target: t.Name, App: def.Name, Provider: t.Provider,
		ImageDigest: img.Image.Digest, SettingsDigest: "watch", ImageDir: img.Dir,
		RunDir: filepath.Join(l.opts.Env.StateDir, "instances", id), State: state.Starting,
		Created: time.Now().UTC(), WatchPID: os.Getpid(),
	}
	if err := l.store.Put(inst); err != nil {
		return nil, err
	}
	l.emit(Event{Kind: EventBootStarted, App: def.Name, Image: short(img.Image.Digest), Instance: id})
	booted, err := l.provider.Boot(ctx, deploy.Spec{
		Project: p.Dir, Target: &tt, App: def, Image: img.Image, ImageDir: img.Dir,
		RunDir: inst.RunDir, ID: id, Timeout: l.opts.Timeout,
		Progress: func(msg string) { l.note(def.Name, msg) },
	})
	if err != nil {
		if booted != nil {
			_ = l.removeInstance(booted)
		} else {
			_ = l.store.Delete(id)
		}
		return nil, err
	}
	booted.Created, booted.SettingsDigest, booted.WatchPID = inst.Created, inst.SettingsDigest, inst.WatchPID
	if err := l.store.Put(booted); err != nil {
		_ = l.removeInstance(booted)
		return nil, err
	}
	return &vm{inst: booted, ports: ports}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(internalBind, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

package devloop

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/forward"
	"github.com/unikfile/unikfile/state"
	"github.com/unikfile/unikfile/watch"
)

// load reads the Unikfile; diagnostics become the error's text.
func (l *loop) load() (*lang.Project, error) {
	p, src, diags := lang.Load(l.opts.File, lang.Options{Vars: l.opts.Vars, Catalog: l.opts.Catalog})
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

// pickTarget returns the named target, or the only one watch can serve.
func pickTarget(p *lang.Project, name string) (*lang.Target, error) {
	t, err := findTarget(p, name)
	if err == nil && len(t.Imports) > 0 {
		return nil, fmt.Errorf("target %s lists apps of other Unikfiles (%s); watch follows the apps of one Unikfile: watch a target of the Unikfile that declares them, or bring this one up with unikfile up", t.Name, t.Imports[0])
	}
	return t, err
}

func findTarget(p *lang.Project, name string) (*lang.Target, error) {
	if name != "" {
		t := p.Target(name)
		if t == nil {
			return nil, fmt.Errorf("no target named %q in %s; targets: %s", name, p.File, strings.Join(targetNames(p.Targets), ", "))
		}
		if !watchable(t) {
			return nil, fmt.Errorf("target %s uses provider %q, which reaches apps at their own address; watch serves apps on this host's ports, through providers that forward them (qemu): name one of: %s", name, t.Provider, strings.Join(targetNames(watchableTargets(p)), ", "))
		}
		return t, nil
	}
	qs := watchableTargets(p)
	switch len(qs) {
	case 1:
		return qs[0], nil
	case 0:
		return nil, fmt.Errorf("%s has no target with provider \"qemu\"; watch runs apps in local QEMU: add one, e.g. target \"dev\" { provider = \"qemu\" apps = [app.NAME] }", p.File)
	}
	return nil, fmt.Errorf("%s has several QEMU targets; name the one to watch: unikfile watch %s", p.File, strings.Join(targetNames(qs), "|"))
}

// watchable says whether watch can serve t: its provider forwards the
// apps' ports from this host, so watch's forwarder can own them.
func watchable(t *lang.Target) bool {
	if t.Settings == nil {
		return false
	}
	_, ok := t.Settings.Forwards(nil)
	return ok
}

func watchableTargets(p *lang.Project) []*lang.Target {
	var out []*lang.Target
	for _, t := range p.Targets {
		if watchable(t) {
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
//
// The claim itself is atomic: a watch holds the target's claim (an flock,
// see state.ClaimTarget) for as long as it runs, so of two watches started
// at the same instant one gets it and the other is told which PID serves
// the target, before either opens a port.
func (l *loop) claim(p *lang.Project, t *lang.Target) error {
	release, holder, ok, err := l.store.ClaimTarget(p.Dir, t.Name)
	if err != nil {
		return err
	}
	if !ok {
		return alreadyWatched(t.Name, holder)
	}
	l.release = release
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
			return alreadyWatched(t.Name, inst.WatchPID)
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

// alreadyWatched is the error of a watch that finds its target served by
// another (pid 0: the other's PID could not be read).
func alreadyWatched(target string, pid int) error {
	who := "another `unikfile watch`"
	if pid > 0 {
		who += fmt.Sprintf(" (pid %d)", pid)
	}
	return fmt.Errorf("target %s is already watched by %s; stop that one first (Ctrl-C in its terminal)", target, who)
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
	m := map[int]string{}
	fw, _ := t.Forwards(a)
	for _, f := range fw {
		m[f.Guest] = net.JoinHostPort(f.Bind, strconv.Itoa(f.Host))
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

package devloop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/unikfile/unikfile/cache/gc"
	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/pipeline"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

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
		v.ended.Store(true)
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
	return deploy.Remove(context.WithoutCancel(l.ctx), l.store, l.provider, inst)
}

// buildAndBoot builds one app through the cached graph and boots it on
// internal ports. It runs in its own goroutine.
// serving is the key of the VM serving the app ("" when none): a build
// that gives the same image for the same settings boots nothing.
func (l *loop) buildAndBoot(ctx context.Context, p *lang.Project, t *lang.Target, def *lang.App, serving string) (res jobResult) {
	start := time.Now()
	// The cache is held (no prune removes what the build uses) until the
	// VM booting from it is recorded; then its automatic limits apply.
	release, err := l.opts.Env.Cache.Hold(ctx)
	if err != nil {
		return jobResult{built: time.Since(start), cancelled: ctx.Err() != nil, err: err}
	}
	defer func() {
		release()
		if res.err == nil && !res.cancelled {
			l.autoPrune(ctx, def.Name)
		}
	}()
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
	if serving != "" && servingKey(img.Image.Digest, t, def) == serving {
		r.unchanged = true
		return r
	}
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

// servingKey identifies what a VM runs: its image and the settings that
// shape it, as up decides (a settings-only edit of the Unikfile reboots
// too). Host ports are the forwarder's, not the VM's.
func servingKey(image string, t *lang.Target, a *lang.App) string {
	return image + " " + deploy.SettingsDigest(t, a, nil)
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
	if err := deploy.CheckImage(t.Provider, l.provider, img.Image); err != nil {
		return nil, fmt.Errorf("app %s: %w", def.Name, err)
	}
	ports := map[int]int{}
	var forwards []lang.Forward
	for _, g := range img.Image.Ports {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("app %s: pick an internal port: %w", def.Name, err)
		}
		ports[g] = port
		forwards = append(forwards, lang.Forward{Bind: internalBind, Host: port, Guest: g})
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
		Project: p.Dir, Target: t, App: def, Image: img.Image, ImageDir: img.Dir,
		Forwards: forwards, RunDir: inst.RunDir, ID: id, Timeout: l.opts.Timeout,
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
	return &vm{inst: booted, ports: ports, key: servingKey(img.Image.Digest, t, def)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort(internalBind, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// autoPrune applies the cache's automatic limits (Options.CacheLimits)
// after a build; what it removed is a note.
func (l *loop) autoPrune(ctx context.Context, app string) {
	res, err := gc.Auto(ctx, l.opts.Env.Cache, l.store, l.opts.CacheLimits)
	switch {
	case err != nil:
		l.note(app, "cache prune: "+err.Error())
	case len(res.Removed) > 0:
		l.emit(Event{Kind: EventNote, App: app, Message: fmt.Sprintf("the cache was over its limit: removed %d unused entries; it holds %d MiB", len(res.Removed), res.Size>>20)})
	}
}

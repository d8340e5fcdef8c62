package deploy

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// fakeProvider keeps "running" instances in memory. An image's digest picks
// its behaviour: "fail", "exit" (exits before ready), "port" (port taken).
type fakeProvider struct {
	mu       sync.Mutex
	running  map[string]bool
	starting map[string]bool // alive but never ready: left by a dead `up`
	boots    int
	stops    int
}

func (f *fakeProvider) Boot(ctx context.Context, spec Spec) (*state.Instance, error) {
	f.mu.Lock()
	f.boots++
	f.mu.Unlock()
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return nil, err
	}
	inst := &state.Instance{ID: spec.ID, Project: spec.Project, Target: spec.Target.Name, App: spec.AppName(),
		Provider: "fake", ImageDigest: spec.Image.Digest, RunDir: spec.RunDir, State: state.Running,
		Ports: []state.Port{{Bind: "127.0.0.1", Host: 8080, Guest: 8080}}}
	switch spec.Image.Digest {
	case "fail":
		os.RemoveAll(spec.RunDir)
		return nil, errors.New("app " + spec.AppName() + ": boot failed")
	case "exit":
		st := 3
		inst.State, inst.ExitStatus = state.Exited, &st
		return inst, errors.New("app " + spec.AppName() + " exited with status 3 before it was ready")
	case "port":
		os.RemoveAll(spec.RunDir)
		return nil, &PortInUseError{App: spec.AppName(), Bind: "127.0.0.1", Port: 8080, Guest: 8080}
	}
	f.mu.Lock()
	f.running[spec.ID] = true
	f.mu.Unlock()
	if spec.Ready != nil {
		if err := spec.Ready(inst); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

func (f *fakeProvider) Refresh(ctx context.Context, inst *state.Instance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[inst.ID] {
		inst.State = state.Running
	} else if f.starting[inst.ID] {
		inst.State = state.Starting
	} else if inst.Alive() {
		inst.State = state.Failed
	}
	return nil
}

func (f *fakeProvider) Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error {
	_, err := io.WriteString(w, "log of "+inst.ID+"\n")
	return err
}

func (f *fakeProvider) Stop(ctx context.Context, inst *state.Instance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[inst.ID] {
		f.stops++
	}
	delete(f.running, inst.ID)
	delete(f.starting, inst.ID)
	if inst.State != state.Exited {
		inst.State = state.Stopped
	}
	return nil
}

func (f *fakeProvider) isRunning(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[id]
}

type fixture struct {
	store   *state.Store
	fake    *fakeProvider
	reg     Registry
	project string
	target  *lang.Target
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	store, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeProvider{running: map[string]bool{}, starting: map[string]bool{}}
	return &fixture{
		store: store, fake: fake,
		reg:     Registry{"fake": func(Env) (Provider, error) { return fake, nil }},
		project: filepath.Join(dir, "project"),
		target:  &lang.Target{Name: "dev", Provider: "fake", Apps: []string{"api"}},
	}
}

func (fx *fixture) up(t *testing.T, digest string) ([]Result, error) {
	t.Helper()
	return Up(context.Background(), fx.store, fx.reg, UpRequest{
		Project: fx.project, Target: fx.target,
		Images: map[string]AppImage{"api": {Image: &pack.Image{App: "api", Digest: digest}, Dir: "/images/api"}},
	})
}

func (fx *fixture) instances(t *testing.T) []*state.Instance {
	t.Helper()
	l, err := fx.store.List(state.Filter{Project: fx.project})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestUpStartUnchangedReplace(t *testing.T) {
	fx := newFixture(t)
	res, err := fx.up(t, "d1")
	if err != nil || len(res) != 1 || res[0].Action != ActionStarted {
		t.Fatalf("first up = %+v, %v", res, err)
	}
	first := res[0].Instance
	if _, err := os.Stat(first.RunDir); err != nil {
		t.Errorf("run dir: %v", err)
	}
	res, err = fx.up(t, "d1")
	if err != nil || res[0].Action != ActionUnchanged || res[0].Instance.ID != first.ID || fx.fake.boots != 1 {
		t.Fatalf("second up = %+v, %v (boots %d)", res, err, fx.fake.boots)
	}
	res, err = fx.up(t, "d2")
	if err != nil || res[0].Action != ActionReplaced || len(res[0].Removed) != 1 || res[0].Removed[0] != first.ID {
		t.Fatalf("third up = %+v, %v", res, err)
	}
	if fx.fake.isRunning(first.ID) {
		t.Error("the replaced instance still runs")
	}
	if _, err := os.Stat(first.RunDir); !os.IsNotExist(err) {
		t.Errorf("old run dir: %v", err)
	}
	l := fx.instances(t)
	if len(l) != 1 || l[0].ID != res[0].Instance.ID || l[0].State != state.Running || l[0].ImageDigest != "d2" {
		t.Errorf("records = %+v", l)
	}
}

func TestUpFailureKeepsTheOldInstance(t *testing.T) {
	fx := newFixture(t)
	res, err := fx.up(t, "d1")
	if err != nil {
		t.Fatal(err)
	}
	old := res[0].Instance
	res, err = fx.up(t, "fail")
	if err == nil || !strings.Contains(err.Error(), "app api: boot failed") || res[0].Action != ActionFailed {
		t.Fatalf("up = %+v, %v", res, err)
	}
	l := fx.instances(t)
	if len(l) != 1 || l[0].ID != old.ID || !fx.fake.isRunning(old.ID) {
		t.Errorf("after a failed boot: %+v", l)
	}

	res, err = fx.up(t, "exit")
	if err == nil || res[0].Action != ActionExited || res[0].Instance.ExitStatus == nil {
		t.Fatalf("exit up = %+v, %v", res, err)
	}
	l = fx.instances(t)
	if len(l) != 2 || l[1].State != state.Exited || *l[1].ExitStatus != 3 || !fx.fake.isRunning(old.ID) {
		t.Errorf("after an app exited before ready: %+v", l)
	}
}

func TestUpPortConflictNamesTheHolder(t *testing.T) {
	fx := newFixture(t)
	holder := &state.Instance{ID: "web-0123456789", Project: "/other", Target: "dev", App: "web", Provider: "fake",
		State: state.Running, Created: time.Now(), Ports: []state.Port{{Bind: "127.0.0.1", Host: 8080, Guest: 80}}}
	if err := fx.store.Put(holder); err != nil {
		t.Fatal(err)
	}
	fx.fake.running[holder.ID] = true
	_, err := fx.up(t, "port")
	var pe *PortInUseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "web-0123456789") || !strings.Contains(err.Error(), "project /other") {
		t.Fatalf("error = %v", err)
	}
	if l := fx.instances(t); len(l) != 0 {
		t.Errorf("records left by the failed boot: %+v", l)
	}
}

func TestUpRejects(t *testing.T) {
	fx := newFixture(t)
	if _, err := Up(context.Background(), fx.store, fx.reg, UpRequest{Project: fx.project, Target: fx.target}); err == nil || !strings.Contains(err.Error(), "no image for app api") {
		t.Errorf("missing image: %v", err)
	}
	bad := &lang.Target{Name: "x", Provider: "vmware-fusion", Apps: nil}
	if _, err := Up(context.Background(), fx.store, fx.reg, UpRequest{Project: fx.project, Target: bad}); err == nil || !strings.Contains(err.Error(), `unknown provider "vmware-fusion" (known: fake)`) {
		t.Errorf("unknown provider: %v", err)
	}
	if _, err := Up(context.Background(), fx.store, fx.reg, UpRequest{Project: "relative", Target: fx.target}); err == nil {
		t.Error("relative project accepted")
	}
}

func TestUpWaitsForTheProjectLock(t *testing.T) {
	fx := newFixture(t)
	unlock, err := fx.store.Lock(context.Background(), fx.project)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		_, err := Up(context.Background(), fx.store, fx.reg, UpRequest{
			Project: fx.project, Target: fx.target,
			Images:   map[string]AppImage{"api": {Image: &pack.Image{App: "api", Digest: "d1"}}},
			Progress: func(m string) { mu.Lock(); msgs = append(msgs, m); mu.Unlock() },
		})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Up did not wait for the lock: %v", err)
	default:
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) == 0 || !strings.HasPrefix(msgs[0], "waiting for another unikfile on this project (pid ") {
		t.Errorf("progress = %q", msgs)
	}
}

func TestDownListLogs(t *testing.T) {
	fx := newFixture(t)
	res, err := fx.up(t, "d1")
	if err != nil {
		t.Fatal(err)
	}
	inst := res[0].Instance
	var sb strings.Builder
	if err := Logs(context.Background(), fx.store, fx.reg, inst, false, &sb); err != nil || sb.String() != "log of "+inst.ID+"\n" {
		t.Errorf("Logs = %q, %v", sb.String(), err)
	}
	// The VM dies behind unikfile's back: List notices and records it.
	fx.fake.mu.Lock()
	delete(fx.fake.running, inst.ID)
	fx.fake.mu.Unlock()
	l, err := List(context.Background(), fx.store, fx.reg, state.Filter{Project: fx.project})
	if err != nil || len(l) != 1 || l[0].State != state.Failed {
		t.Fatalf("List = %+v, %v", l, err)
	}
	if got, _ := fx.store.Get(inst.ID); got.State != state.Failed {
		t.Errorf("recorded state = %s", got.State)
	}
	res, err = Down(context.Background(), fx.store, fx.reg, fx.project, "")
	if err != nil || len(res) != 1 || res[0].Action != ActionRemoved || res[0].Instance.ID != inst.ID || res[0].Instance.State != state.Stopped {
		t.Fatalf("Down = %+v, %v", res, err)
	}
	if l := fx.instances(t); len(l) != 0 {
		t.Errorf("records after Down: %+v", l)
	}
	if _, err := os.Stat(inst.RunDir); !os.IsNotExist(err) {
		t.Errorf("run dir after Down: %v", err)
	}
}

func TestDownRefusesAStrangeRunDir(t *testing.T) {
	fx := newFixture(t)
	keep := t.TempDir()
	inst := &state.Instance{ID: "api-0123456789", Project: fx.project, Target: "dev", App: "api", Provider: "fake", RunDir: keep, State: state.Stopped}
	if err := fx.store.Put(inst); err != nil {
		t.Fatal(err)
	}
	if _, err := Down(context.Background(), fx.store, fx.reg, fx.project, ""); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Down = %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Down removed %s: %v", keep, err)
	}
}

func TestConsoleMux(t *testing.T) {
	var b strings.Builder
	m := newConsoleMux(&b, []string{"api", "worker"})
	api, worker := m.writer("api"), m.writer("worker")
	_, _ = api.Write([]byte("hel"))
	_, _ = worker.Write([]byte("one\ntw"))
	_, _ = api.Write([]byte("lo\n"))
	worker.flush()
	want := "worker | one\napi    | hello\nworker | tw\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	var single strings.Builder
	w := newConsoleMux(&single, []string{"api"}).writer("api")
	_, _ = w.Write([]byte("plain\n"))
	if single.String() != "plain\n" {
		t.Errorf("single app: %q", single.String())
	}
}

// An instance left starting by an `up` that died is removed by the next one.
func TestUpRemovesAnOrphanedBoot(t *testing.T) {
	fx := newFixture(t)
	orphan := &state.Instance{ID: "api-0123456789", Project: fx.project, Target: "dev", App: "api", Provider: "fake",
		ImageDigest: "d1", RunDir: filepath.Join(fx.store.Dir(), "instances", "api-0123456789"), State: state.Starting, Created: time.Now()}
	if err := os.MkdirAll(orphan.RunDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := fx.store.Put(orphan); err != nil {
		t.Fatal(err)
	}
	fx.fake.starting[orphan.ID] = true
	res, err := fx.up(t, "d1")
	if err != nil || res[0].Action != ActionStarted || len(res[0].Removed) != 1 || res[0].Removed[0] != orphan.ID {
		t.Fatalf("up = %+v, %v", res, err)
	}
	if l := fx.instances(t); len(l) != 1 || l[0].ID == orphan.ID {
		t.Errorf("records = %+v", l)
	}
	if _, err := os.Stat(orphan.RunDir); !os.IsNotExist(err) {
		t.Errorf("orphan's run dir: %v", err)
	}
}

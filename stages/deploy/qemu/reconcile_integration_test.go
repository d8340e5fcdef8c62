package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

func registry() deploy.Registry { return deploy.Registry{Name: New} }

func upRequest(t *testing.T, project string, target *lang.Target, img *pack.Image, imgDir string) deploy.UpRequest {
	return deploy.UpRequest{
		Project: project, Target: target,
		Images:   map[string]deploy.AppImage{"hello": {Image: img, Dir: imgDir}},
		Progress: func(msg string) { t.Log("progress: " + msg) },
	}
}

func oneResult(t *testing.T, res []deploy.Result, err error, action string) *state.Instance {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Action != action || res[0].Instance == nil {
		t.Fatalf("results = %+v, want one %q", res, action)
	}
	return res[0].Instance
}

// Up twice on one image leaves the instance alone; Up on a new image
// replaces it on the same host port; Down removes everything.
func TestIntegrationDeployUpUnchangedReplaceDown(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	store, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	target := testTarget(t)
	port := SettingsOf(target).HostPorts[8080]
	imgA, dirA := b.image(t, "a", "testmsg=a")
	imgB, dirB := b.image(t, "b", "testmsg=b")
	ctx := context.Background()
	t.Cleanup(func() { _, _ = deploy.Down(ctx, store, registry(), project, "") })

	res, err := deploy.Up(ctx, store, registry(), upRequest(t, project, target, imgA, dirA))
	first := oneResult(t, res, err, deploy.ActionStarted)
	if got := httpGet(t, port); got != "hello a\n" {
		t.Errorf("HTTP answer %q", got)
	}

	res, err = deploy.Up(ctx, store, registry(), upRequest(t, project, target, imgA, dirA))
	if same := oneResult(t, res, err, deploy.ActionUnchanged); same.ID != first.ID {
		t.Errorf("unchanged returned %s, want %s", same.ID, first.ID)
	}

	res, err = deploy.Up(ctx, store, registry(), upRequest(t, project, target, imgB, dirB))
	second := oneResult(t, res, err, deploy.ActionReplaced)
	if len(res[0].Removed) != 1 || res[0].Removed[0] != first.ID {
		t.Errorf("removed = %v, want [%s]", res[0].Removed, first.ID)
	}
	if got := httpGet(t, port); got != "hello b\n" {
		t.Errorf("HTTP answer after the replacement %q", got)
	}
	if len(second.Ports) != 1 || second.Ports[0].Host != port {
		t.Errorf("the new instance's ports = %+v, want host port %d", second.Ports, port)
	}
	noQEMULeft(t, first.RunDir)
	if _, err := os.Stat(first.RunDir); !os.IsNotExist(err) {
		t.Errorf("old run directory left: %v", err)
	}

	list, err := deploy.List(ctx, store, registry(), state.Filter{Project: project})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != second.ID || list[0].State != state.Running || list[0].Ports[0].Host != port {
		t.Errorf("List = %+v", list)
	}

	res, err = deploy.Down(ctx, store, registry(), project, "")
	if err != nil || len(res) != 1 || res[0].Action != deploy.ActionRemoved {
		t.Fatalf("Down = %+v, %v", res, err)
	}
	noQEMULeft(t, second.RunDir)
	if list, _ := store.List(state.Filter{Project: project}); len(list) != 0 {
		t.Errorf("records left after Down: %+v", list)
	}
	if _, err := os.Stat(second.RunDir); !os.IsNotExist(err) {
		t.Errorf("run directory left after Down: %v", err)
	}
}

// Two concurrent `up` (two processes: two Store values) on one project: the
// second waits for the first and then finds its instance running.
func TestIntegrationDeployConcurrentUp(t *testing.T) {
	b := needQEMU(t)
	dir := stateDir(t)
	project := filepath.Join(dir, "project")
	target := testTarget(t)
	img, imgDir := b.image(t, "a", "testmsg=a")
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var actions, progress []string
	for range 2 {
		store, err := state.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			req := upRequest(t, project, target, img, imgDir)
			req.Progress = func(msg string) {
				mu.Lock()
				progress = append(progress, msg)
				mu.Unlock()
			}
			res, err := deploy.Up(ctx, store, registry(), req)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			actions = append(actions, res[0].Action)
			mu.Unlock()
		})
	}
	wg.Wait()
	store, _ := state.Open(dir)
	t.Cleanup(func() { _, _ = deploy.Down(ctx, store, registry(), project, "") })
	list, err := deploy.List(ctx, store, registry(), state.Filter{Project: project})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].State != state.Running {
		t.Errorf("instances after two concurrent ups: %+v", list)
	}
	if len(actions) != 2 || !(actions[0] == deploy.ActionStarted && actions[1] == deploy.ActionUnchanged) {
		t.Errorf("actions = %v, want [started unchanged]", actions)
	}
	// The holder's pid is named once it has written it; the second up
	// may look before that.
	if !strings.Contains(strings.Join(progress, "\n"), "waiting for another unikfile on this project") {
		t.Errorf("no waiting message in %q", progress)
	}
}

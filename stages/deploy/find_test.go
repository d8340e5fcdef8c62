package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/state"
)

func TestFindByIDOrApp(t *testing.T) {
	fx := newFixture(t)
	if _, err := fx.up(t, "sha256:one"); err != nil {
		t.Fatal(err)
	}
	running := fx.instances(t)[0]
	// An older record of the same app that is no longer running.
	old := &state.Instance{ID: "api-old", Project: fx.project, Target: "dev", App: "api", Provider: "fake",
		State: state.Exited, Created: running.Created.Add(-time.Hour)}
	if err := fx.store.Put(old); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := Find(ctx, fx.store, fx.reg, fx.project, "api-old"); err != nil || got.ID != "api-old" {
		t.Errorf("by ID: %v, %v", got, err)
	}
	if got, err := Find(ctx, fx.store, fx.reg, fx.project, "api"); err != nil || got.ID != running.ID {
		t.Errorf("by app: %v, %v; want the running %s", got, err, running.ID)
	}
	if _, err := Find(ctx, fx.store, fx.reg, fx.project, "web"); err == nil || !strings.Contains(err.Error(), `no instance of app "web"`) || !strings.Contains(err.Error(), "unikfile ps") {
		t.Errorf("unknown app: %v", err)
	}
	if _, err := Find(ctx, fx.store, fx.reg, "/elsewhere", "api"); err == nil {
		t.Error("an app of another project was found")
	}
}

func TestStrayTargets(t *testing.T) {
	fx := newFixture(t)
	if _, err := fx.up(t, "sha256:one"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []*state.Instance{
		{ID: "gone-1", Project: fx.project, Target: "old", App: "api", Provider: "fake", State: state.Running},
		{ID: "gone-2", Project: fx.project, Target: "old", App: "web", Provider: "fake", State: state.Running},
		{ID: "dead-1", Project: fx.project, Target: "older", App: "api", Provider: "fake", State: state.Exited},
	} {
		if err := fx.store.Put(i); err != nil {
			t.Fatal(err)
		}
	}
	got, err := StrayTargets(fx.store, fx.project, func(t string) bool { return t == "dev" })
	if err != nil || len(got) != 1 || got[0] != "old" {
		t.Errorf("StrayTargets = %v, %v; want [old] (once; not the exited one's, not dev)", got, err)
	}
}

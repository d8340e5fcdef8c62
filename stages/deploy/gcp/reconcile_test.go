package gcp

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/api/option"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/gcp/gcefake"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

func (e *env) registry() deploy.Registry {
	return deploy.Registry{Name: func(deploy.Env) (deploy.Provider, error) { return e.provider(), nil }}
}

func (e *env) up(store *state.Store, s *Settings, img *pack.Image, dir string) ([]deploy.Result, error) {
	return deploy.Up(context.Background(), store, e.registry(), deploy.UpRequest{
		Project: filepath.Join(e.dir, "project"), Target: testTarget(s),
		Images:   map[string]deploy.AppImage{"hello": {Image: img, Dir: dir}},
		RunRoot:  filepath.Join(e.dir, "instances"),
		Progress: func(msg string) { e.t.Log("progress: " + msg) },
	})
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

// Through the reconciler: up starts; a no-change up calls no API that
// changes anything; a new image replaces the instance (new before old) and
// its old image goes; a changed machine type replaces it on the same
// image; down removes everything.
func TestReconcilerUpUnchangedReplaceDown(t *testing.T) {
	e := newEnv(t)
	store, err := state.Open(filepath.Join(e.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	imgA, dirA := e.image(pack.BootBIOS, 50)
	imgB, dirB := e.image(pack.BootBIOS, 51)
	s := testSettings()

	res, err := e.up(store, s, imgA, dirA)
	first := oneResult(t, res, err, deploy.ActionStarted)

	gceBefore, gcsBefore := len(e.gce.Mutations()), len(e.gcs.Mutations())
	res, err = e.up(store, s, imgA, dirA)
	same := oneResult(t, res, err, deploy.ActionUnchanged)
	if same.ID != first.ID {
		t.Errorf("unchanged up gave %s, want %s", same.ID, first.ID)
	}
	if m := e.gce.Mutations()[gceBefore:]; len(m) != 0 {
		t.Errorf("a no-change up called %v", m)
	}
	if m := e.gcs.Mutations()[gcsBefore:]; len(m) != 0 {
		t.Errorf("a no-change up called %v", m)
	}

	res, err = e.up(store, s, imgB, dirB)
	second := oneResult(t, res, err, deploy.ActionReplaced)
	if !slices.Equal(res[0].Removed, []string{first.ID}) {
		t.Errorf("removed %v", res[0].Removed)
	}
	sc, _, _ := configOf(second)
	if got := e.gce.Instances(); !slices.Equal(got, []string{sc.Instance}) {
		t.Errorf("instances %v, want only %s", got, sc.Instance)
	}
	if got := e.gce.Images(); !slices.Equal(got, []string{sc.Image}) {
		t.Errorf("images %v, want only %s (the old one unused)", got, sc.Image)
	}
	if got := e.gce.Firewalls(); !slices.Equal(got, []string{sc.Firewall}) {
		t.Errorf("firewalls %v", got)
	}

	bigger := testSettings()
	bigger.MachineType = "e2-medium"
	res, err = e.up(store, bigger, imgB, dirB)
	third := oneResult(t, res, err, deploy.ActionReplaced)
	tc, _, _ := configOf(third)
	if tc.Image != sc.Image || len(e.gce.Images()) != 1 || !strings.HasSuffix(e.gce.Instance(tc.Instance).MachineType, "/e2-medium") {
		t.Errorf("machine type change: images %v, instance %+v", e.gce.Images(), e.gce.Instance(tc.Instance))
	}

	if _, err := deploy.Down(context.Background(), store, e.registry(), filepath.Join(e.dir, "project"), ""); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "instances")); len(ents) != 0 {
		t.Errorf("run directories left: %d", len(ents))
	}
}

// Application Default Credentials from a service account key file: the
// client exchanges a JWT signed with the key for a token at the key's
// token endpoint, and the fake checks the token on every call; the
// project comes from the key file. A key the server does not know is
// refused with what to do.
func TestApplicationDefaultCredentialsFromAKeyFile(t *testing.T) {
	e := newEnv(t)
	key := gcefake.NewKey(testProject, "deployer")
	e.gce.Close()
	e.gce = gcefake.New(gcefake.Options{Objects: e.gcs.Open, Keys: []*gcefake.Key{key}})
	keyFile := filepath.Join(e.dir, "key.json")
	os.WriteFile(keyFile, key.JSON(e.gce.TokenURI()), 0o600)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyFile)
	p := e.provider()
	p.ComputeOptions = []option.ClientOption{option.WithEndpoint(e.gce.Endpoint())}
	p.Getenv = func(k string) string {
		if k == "GOOGLE_APPLICATION_CREDENTIALS" {
			return keyFile
		}
		return ""
	}
	s := testSettings()
	s.Project = "" // from the key file
	img, dir := e.image(pack.BootBIOS, 52)
	inst, err := p.Boot(context.Background(), e.spec(testTarget(s), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, _, _ := configOf(inst); cfg.Project != testProject {
		t.Errorf("project %q, want the key file's", cfg.Project)
	}
	if err := p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()

	// Without a token the fake refuses.
	anon := e.provider()
	anon.ComputeOptions = []option.ClientOption{option.WithEndpoint(e.gce.Endpoint()), option.WithoutAuthentication()}
	_, err = anon.Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err == nil || !strings.Contains(err.Error(), "credentials were refused (HTTP 401") || !strings.Contains(err.Error(), "gcloud auth application-default login") {
		t.Errorf("err = %v", err)
	}
	// A key the token endpoint does not know.
	other := gcefake.NewKey(testProject, "stranger")
	os.WriteFile(keyFile, other.JSON(e.gce.TokenURI()), 0o600)
	stranger := e.provider()
	stranger.ComputeOptions = []option.ClientOption{option.WithEndpoint(e.gce.Endpoint())}
	_, err = stranger.Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") || !strings.Contains(err.Error(), "Application Default Credentials") {
		t.Errorf("err = %v", err)
	}
	e.nothingLeft()
}

func TestProjectFromTheEnvironmentAndGcloud(t *testing.T) {
	home := t.TempDir()
	conf := filepath.Join(home, ".config", "gcloud")
	os.MkdirAll(filepath.Join(conf, "configurations"), 0o755)
	os.WriteFile(filepath.Join(conf, "active_config"), []byte("work\n"), 0o644)
	os.WriteFile(filepath.Join(conf, "configurations", "config_work"), []byte("[compute]\nzone = europe-west1-b\n[core]\naccount = me@example.com\nproject = from-gcloud\n"), 0o644)
	env := map[string]string{"HOME": home}
	p := &Provider{Getenv: func(k string) string { return env[k] }}
	ctx := context.Background()
	if got, err := p.resolveProject(ctx, &Settings{Project: "from-settings"}); got != "from-settings" || err != nil {
		t.Errorf("settings: %q %v", got, err)
	}
	if got, err := p.resolveProject(ctx, &Settings{}); got != "from-gcloud" || err != nil {
		t.Errorf("gcloud: %q %v", got, err)
	}
	env["GOOGLE_CLOUD_PROJECT"] = "from-env"
	if got, _ := p.resolveProject(ctx, &Settings{}); got != "from-env" {
		t.Errorf("env: %q", got)
	}
}

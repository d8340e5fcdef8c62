package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/stages/deploy/gcp"
	"github.com/unikfile/unikfile/stages/deploy/gcp/gcefake"
)

// gcpUnikfile is examples/hello with a target on Compute Engine.
const gcpUnikfile = `app "hello" {
  source   = "."
  language = "go"
  args     = ["-listen", ":8080"]
  ports    = [8080]
  memory   = "256MiB"
}

target "gce" {
  provider = "gcp"
  apps     = [app.hello]
  gcp {
    project      = "test-project"
    zone         = "europe-west1-b"
    bucket       = "unikfile-images"
    machine_type = "e2-micro"
    ingress      = ["0.0.0.0/0"]
  }
}
`

// TestGCPThroughTheBinaryWithStandInGuest runs examples/hello as a gce
// target through the unikfile binary against gcefake and fake-gcs-server,
// with Application Default Credentials from a service account key file
// (the fake checks the tokens). The fake's stand-in guest prints the
// init's markers, since no guest boots in it. up / no-change up (no
// mutating call) / an edit that replaces the instance and its image /
// logs and logs -f / down, which leaves nothing in either fake.
func TestGCPThroughTheBinaryWithStandInGuest(t *testing.T) {
	if kernel == "" {
		t.Fatal("no kernel: run scripts/install-deps (it extracts Debian's cloud kernel into the cache)")
	}
	key := gcefake.NewKey("test-project", "deployer")
	var gce *gcefake.Server
	gcs := gcefake.NewStorage(func(r *http.Request) bool { return gce.Authorized(r) }, "unikfile-images")
	gce = gcefake.New(gcefake.Options{Objects: gcs.Open, Keys: []*gcefake.Key{key}})
	t.Cleanup(func() { gce.Close(); gcs.Close() })

	src, _ := os.ReadFile("../examples/hello/main.go")
	mod, _ := os.ReadFile("../examples/hello/go.mod")
	p := newProject(t, map[string]string{"Unikfile": gcpUnikfile, "main.go": string(src), "go.mod": string(mod)})
	keyFile := filepath.Join(t.TempDir(), "key.json")
	os.WriteFile(keyFile, key.JSON(gce.TokenURI()), 0o600)
	p.env = append(p.env, "GOOGLE_APPLICATION_CREDENTIALS="+keyFile,
		gcp.EnvComputeEndpoint+"="+gce.Endpoint(), gcp.EnvStorageEndpoint+"="+gcs.Endpoint())

	r := p.ok("up")
	inst := gce.Instances()
	if len(inst) != 1 || len(gce.Images()) != 1 || len(gce.Firewalls()) != 1 {
		t.Fatalf("after up: instances %v, images %v, firewalls %v\n%s", inst, gce.Images(), gce.Firewalls(), r.stderr)
	}
	addr := gce.Instance(inst[0]).NetworkInterfaces[0].AccessConfigs[0].NatIP
	if !strings.Contains(r.stdout, "http://"+addr+":8080/") {
		t.Errorf("up does not print the instance's address %s:\n%s", addr, r.stdout)
	}
	if objs := gcs.Objects(); len(objs) != 0 {
		t.Errorf("staged archives left: %v", objs)
	}
	firstImage := gce.Images()[0]

	gceMut, gcsMut := len(gce.Mutations()), len(gcs.Mutations())
	r = p.ok("up")
	if !strings.Contains(r.stdout, "gce/hello: unchanged") {
		t.Errorf("a second up:\n%s", r.stdout)
	}
	if m := gce.Mutations()[gceMut:]; len(m) != 0 {
		t.Errorf("a no-change up called %v", m)
	}
	if m := gcs.Mutations()[gcsMut:]; len(m) != 0 {
		t.Errorf("a no-change up called %v", m)
	}

	var ps []instance
	if err := json.Unmarshal([]byte(p.ok("ps", "--json").stdout), &ps); err != nil || len(ps) != 1 {
		t.Fatalf("ps: %v %v", ps, err)
	}
	if ps[0].State != "running" || len(ps[0].Ports) != 1 || ps[0].Ports[0].Bind != addr {
		t.Errorf("ps: %+v", ps[0])
	}

	// An edit: a new image replaces the instance; the old image goes.
	p.write("main.go", strings.Replace(string(src), "Hello from a unikernel!", "Hello from GCE!", 1))
	r = p.ok("up")
	if !strings.Contains(r.stdout, "gce/hello: replaced") {
		t.Errorf("up after an edit:\n%s", r.stdout)
	}
	if got := gce.Images(); len(got) != 1 || got[0] == firstImage {
		t.Errorf("images after the replacement: %v (the first was %s)", got, firstImage)
	}
	var listed []struct{ ID, Digest, App, State string }
	if err := json.Unmarshal([]byte(p.ok("images", "--target", "gce", "--json").stdout), &listed); err != nil ||
		len(listed) != 1 || listed[0].ID != gce.Images()[0] || listed[0].App != "hello" || listed[0].State != "READY" || len(listed[0].Digest) != 64 {
		t.Errorf("images --target gce: %+v (%v), want the one image %v", listed, err, gce.Images())
	}
	if got := gce.Instances(); len(got) != 1 || got[0] == inst[0] {
		t.Errorf("instances after the replacement: %v", got)
	}

	r = p.ok("logs", "hello")
	if !strings.Contains(r.stdout, "unikfile-init: ready") || !strings.Contains(r.stdout, "stand-in guest") {
		t.Errorf("logs:\n%s", r.stdout)
	}

	// logs -f follows until down removes the instance.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	follow := p.command(ctx, "logs", "-f", "hello")
	out, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "unikfile-init: ready") {
	}
	p.ok("down")
	for sc.Scan() {
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if ctx.Err() != nil {
		t.Error("logs -f did not end when down removed the instance")
	}
	if len(gce.Images())+len(gce.Instances())+len(gce.Firewalls())+len(gcs.Objects()) != 0 {
		t.Errorf("after down: images %v, instances %v, firewalls %v, objects %v", gce.Images(), gce.Instances(), gce.Firewalls(), gcs.Objects())
	}
	if len(p.ps()) != 0 {
		t.Error("ps still lists the instance")
	}
}

// A missing bucket and missing credentials say what to do, and leave
// nothing behind.
func TestGCPFailuresSayWhatToDo(t *testing.T) {
	if kernel == "" {
		t.Fatal("no kernel: run scripts/install-deps")
	}
	key := gcefake.NewKey("test-project", "deployer")
	gcs := gcefake.NewStorage(nil) // no bucket
	gce := gcefake.New(gcefake.Options{Objects: gcs.Open, Keys: []*gcefake.Key{key}})
	t.Cleanup(func() { gce.Close(); gcs.Close() })
	src, _ := os.ReadFile("../examples/hello/main.go")
	mod, _ := os.ReadFile("../examples/hello/go.mod")
	p := newProject(t, map[string]string{"Unikfile": gcpUnikfile, "main.go": string(src), "go.mod": string(mod)})
	keyFile := filepath.Join(t.TempDir(), "key.json")
	os.WriteFile(keyFile, key.JSON(gce.TokenURI()), 0o600)
	p.env = append(p.env, "GOOGLE_APPLICATION_CREDENTIALS="+keyFile,
		gcp.EnvComputeEndpoint+"="+gce.Endpoint(), gcp.EnvStorageEndpoint+"="+gcs.Endpoint())
	r := p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, "bucket unikfile-images does not exist") || !strings.Contains(r.stderr, "create_bucket = true") {
		t.Errorf("up with no bucket: exit %d\n%s", r.code, r.stderr)
	}
	if len(gce.Images())+len(gce.Instances())+len(gce.Firewalls()) != 0 || len(p.ps()) != 0 {
		t.Errorf("a failed up left: %v %v %v %v", gce.Images(), gce.Instances(), gce.Firewalls(), p.ps())
	}
	// A key file that does not exist.
	p.env = append(p.env, "GOOGLE_APPLICATION_CREDENTIALS="+filepath.Join(t.TempDir(), "missing.json"))
	r = p.run("up")
	if r.code != 1 || !strings.Contains(r.stderr, "gcloud auth application-default login") {
		t.Errorf("up with a missing key file: exit %d\n%s", r.code, r.stderr)
	}

}

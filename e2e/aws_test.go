package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
)

// awsUnikfile is examples/hello's app with a target on the aws provider.
const awsUnikfile = `app "hello" {
  source   = "."
  language = "go"
  args     = ["-listen", ":8080"]
  ports    = [8080]
  memory   = "256MiB"
}

target "cloud" {
  provider = "aws"
  apps     = [app.hello]
  aws {
    instance_type = "t3.micro"
    ingress       = ["0.0.0.0/0"]
  }
}
`

// awsProject is examples/hello (its source, the Unikfile above) pointed
// at the project's AWS endpoint through the SDK's own environment
// (AWS_ENDPOINT_URL, the endpoint's fixed credentials and region).
func awsProject(t *testing.T, srv *awstest.Server) *project {
	t.Helper()
	if kernel == "" {
		t.Fatal("no kernel: run scripts/install-deps (it extracts Debian's cloud kernel into the cache)")
	}
	files := map[string]string{"Unikfile": awsUnikfile}
	for _, f := range []string{"main.go", "go.mod"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
	}
	p := newProject(t, files)
	p.env = append(p.env, srv.Env()...)
	return p
}

func newEndpoint(t *testing.T) *awstest.Server {
	// With EC2's eventual consistency: what was just made is unknown to
	// Describe calls for a moment.
	srv := awstest.New(awstest.Options{Lag: 200 * time.Millisecond})
	t.Cleanup(srv.Close) // after the project's cleanup `down`
	return srv
}

// inventory counts what the endpoint holds, by kind.
func inventory(srv *awstest.Server) map[string]int {
	out := map[string]int{}
	for _, r := range srv.Inventory() {
		out[r.Kind]++
	}
	return out
}

func wantInventory(t *testing.T, srv *awstest.Server, when string, want map[string]int) {
	t.Helper()
	got := inventory(srv)
	for _, k := range []string{"snapshot", "image", "instance", "security-group"} {
		if got[k] != want[k] {
			t.Errorf("%s: the inventory holds %v, want %v", when, srv.Inventory(), want)
			return
		}
	}
}

var urlPattern = regexp.MustCompile(`http://203\.0\.113\.\d+:8080/`)

// TestAWSUpUnchangedEditLogsDown_EndpointStandsInForTheGuest runs the real
// unikfile binary against the endpoint, which stands in for the guest by
// serving the init's console markers (no guest boots: there is no AWS
// here). up makes a snapshot, an AMI, a security group and an instance and
// prints the instance's address; an unchanged up calls nothing that
// changes anything; an edit boots the new image before the old instance
// goes, and the old AMI goes with it; logs shows the console; down leaves
// nothing.
func TestAWSUpUnchangedEditLogsDown_EndpointStandsInForTheGuest(t *testing.T) {
	srv := newEndpoint(t)
	p := awsProject(t, srv)

	r := p.ok("up", "cloud")
	t.Logf("up:\n%s%s", r.stdout, r.stderr)
	if !urlPattern.MatchString(r.stdout + r.stderr) {
		t.Errorf("up does not print the instance's address:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	wantInventory(t, srv, "after up", map[string]int{"snapshot": 1, "image": 1, "instance": 1, "security-group": 1})
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "running" || len(insts[0].Ports) != 1 || !strings.HasPrefix(insts[0].Ports[0].Bind, "203.0.113.") {
		t.Fatalf("ps: %+v", insts)
	}
	first := insts[0]
	wantAMIs(t, p, first.ImageDigest)

	srv.ResetCalls()
	r = p.ok("up", "cloud")
	if !strings.Contains(r.stdout+r.stderr, "unchanged") {
		t.Errorf("a second up does not say unchanged:\n%s%s", r.stdout, r.stderr)
	}
	for _, c := range srv.Calls() {
		if c.Mutating() {
			t.Errorf("an unchanged up called %s", c.Action)
		}
	}

	logs := p.ok("logs", "hello").stdout
	if !strings.Contains(logs, "unikfile-init: ready") || !strings.Contains(logs, first.ImageDigest) {
		t.Errorf("logs does not show the console of image %s:\n%s", first.ImageDigest, logs)
	}

	main, _ := os.ReadFile(filepath.Join(p.dir, "main.go"))
	p.write("main.go", strings.Replace(string(main), "Hello from a unikernel!", "Hello again from a unikernel!", 1))
	srv.ResetCalls()
	r = p.ok("up", "cloud")
	t.Logf("up after the edit:\n%s%s", r.stdout, r.stderr)
	if !strings.Contains(r.stdout+r.stderr, "replaced") {
		t.Errorf("up after an edit does not say replaced:\n%s%s", r.stdout, r.stderr)
	}
	var order []string
	for _, c := range srv.Calls() {
		if c.Action == "RunInstances" || c.Action == "TerminateInstances" {
			order = append(order, c.Action)
		}
	}
	if len(order) < 2 || order[0] != "RunInstances" || order[len(order)-1] != "TerminateInstances" {
		t.Errorf("the new instance was not launched before the old one went: %v", order)
	}
	insts = p.ps()
	if len(insts) != 1 || insts[0].ID == first.ID || insts[0].ImageDigest == first.ImageDigest || insts[0].State != "running" {
		t.Fatalf("ps after the edit: %+v (before: %+v)", insts, first)
	}
	wantInventory(t, srv, "after the edit", map[string]int{"snapshot": 1, "image": 1, "instance": 1, "security-group": 1})
	for _, res := range srv.Inventory() {
		if res.Kind == "image" && res.Tags["unikfile:digest"] != insts[0].ImageDigest {
			t.Errorf("the AMI left is of digest %s, not the new %s", res.Tags["unikfile:digest"], insts[0].ImageDigest)
		}
	}
	if logs := p.ok("logs", "hello").stdout; !strings.Contains(logs, insts[0].ImageDigest) {
		t.Errorf("logs after the edit do not show the new image's console:\n%s", logs)
	}

	wantAMIs(t, p, insts[0].ImageDigest)

	p.ok("down", "cloud")
	wantInventory(t, srv, "after down", map[string]int{})
	if insts := p.ps(); len(insts) != 0 {
		t.Errorf("ps after down: %+v", insts)
	}
	wantAMIs(t, p)
	p.write("Unikfile", awsUnikfile+"target \"local\" {\n  provider = \"qemu\"\n  apps     = [app.hello]\n}\n")
	if r := p.run("images", "--target", "local"); r.code != 1 || !strings.Contains(r.stderr, `provider "qemu" keeps no images of its own`) {
		t.Errorf("images --target of a qemu target: exit %d\n%s", r.code, r.stderr)
	}
}

// wantAMIs checks that `images --target cloud` lists exactly one available
// AMI per digest, of the app hello, in the endpoint's region.
func wantAMIs(t *testing.T, p *project, digests ...string) {
	t.Helper()
	var got []struct{ ID, Digest, App, State, Where string }
	if err := json.Unmarshal([]byte(p.ok("images", "--target", "cloud", "--json").stdout), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(digests) {
		t.Fatalf("images --target cloud: %+v, want AMIs of %v", got, digests)
	}
	for i, d := range digests {
		if g := got[i]; g.Digest != d || g.App != "hello" || g.State != "available" || !strings.HasPrefix(g.ID, "ami-") || g.Where == "" {
			t.Errorf("images --target cloud: %+v, want an available AMI of hello's %s", g, d)
		}
	}
	if r := p.ok("images", "--target", "cloud"); len(digests) > 0 && !strings.Contains(r.stdout, digests[0][:12]) {
		t.Errorf("images --target cloud does not show %.12s:\n%s", digests[0], r.stdout)
	}
}

// TestAWSKilledMidUploadThenUp kills unikfile (SIGKILL, its whole process
// group) while it uploads the image's blocks; the next up removes what the
// dead one left and comes up; afterwards the inventory holds only what
// that successful up made, and down leaves nothing.
func TestAWSKilledMidUploadThenUp(t *testing.T) {
	srv := newEndpoint(t)
	p := awsProject(t, srv)
	uploading := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	blocks := 0
	srv.OnCall(func(action string) {
		if action != "PutSnapshotBlock" {
			return
		}
		mu.Lock()
		blocks++
		n := blocks
		mu.Unlock()
		if n >= 3 {
			once.Do(func() { close(uploading) })
			<-release
		}
	})
	run := p.startFor(5*time.Minute, "up", "cloud")
	select {
	case <-uploading:
	case <-time.After(4 * time.Minute):
		close(release)
		run.signal(syscall.SIGKILL, true)
		run.wait()
		t.Fatalf("unikfile never reached its upload:\n%s", run.output())
	}
	run.signal(syscall.SIGKILL, true)
	st := run.wait()
	srv.OnCall(nil)
	close(release)
	if st.Success() {
		t.Fatal("unikfile was killed but exited 0")
	}
	left := srv.Inventory()
	if len(left) == 0 {
		t.Fatal("the killed up left nothing: the test did not kill it mid-upload")
	}
	t.Logf("left by the killed up: %v", left)

	p.ok("up", "cloud")
	wantInventory(t, srv, "after the up that followed the kill", map[string]int{"snapshot": 1, "image": 1, "instance": 1, "security-group": 1})
	for _, old := range left {
		for _, now := range srv.Inventory() {
			if now.ID == old.ID {
				t.Errorf("%s of the killed up is still there", old)
			}
		}
	}
	p.ok("down")
	wantInventory(t, srv, "after down", map[string]int{})
}

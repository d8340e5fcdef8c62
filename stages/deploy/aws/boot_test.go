package aws

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// TestBootMakesAMIRunsInstanceAndStopRemovesAll boots a raw disk through
// the endpoint (which stands in for the guest's console) and checks what
// a user would see in the AWS console: one completed snapshot holding only
// the blocks with data, an ENA, BIOS-booting AMI tagged with the digest, a
// security group with no ingress (and the warning that says how to open
// it), a running instance with the project's tags and its public address
// in the instance's ports. Stop then leaves nothing.
func TestBootMakesAMIRunsInstanceAndStopRemovesAll(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{})
	dir, img := smallDisk(t, "a")
	sp, msgs := spec(t, dir, img)
	inst, err := p.Boot(ctxT(t), sp)
	if err != nil {
		t.Fatalf("Boot: %v\n%s", err, msgs)
	}
	if inst.State != state.Running || len(inst.Ports) != 1 || !strings.HasPrefix(inst.Ports[0].Bind, "203.0.113.") || inst.Ports[0].Guest != 8080 {
		t.Errorf("instance: state %s, ports %+v", inst.State, inst.Ports)
	}
	rec, _, err := recordOf(inst)
	if err != nil {
		t.Fatal(err)
	}
	im, ok := srv.Image(rec.ImageID)
	if !ok || im.State != "available" || !im.Ena || im.BootMode != "legacy-bios" || im.Root != RootDevice || im.Virt != "hvm" || im.VolumeSize != 1 {
		t.Errorf("AMI %s: %+v", rec.ImageID, im)
	}
	if n := srv.Blocks(im.Snapshot); n != 3 {
		t.Errorf("snapshot %s holds %d blocks; the disk has 3 blocks with data", im.Snapshot, n)
	}
	if got := srv.Count("PutSnapshotBlock"); got != 3 {
		t.Errorf("%d PutSnapshotBlock calls for 3 blocks with data", got)
	}
	if rules := srv.Ingress(rec.GroupID); len(rules) != 0 {
		t.Errorf("security group %s with default ingress has rules %v", rec.GroupID, rules)
	}
	if !strings.Contains(msgs.String(), `ingress = ["0.0.0.0/0"]`) {
		t.Errorf("no warning on how to open the closed port:\n%s", msgs)
	}
	for _, r := range srv.Inventory() {
		if r.Kind == "instance" {
			want := map[string]string{TagManaged: "true", TagTarget: "prod", TagApp: "hello", TagDigest: img.Digest, TagInstance: sp.ID, TagProject: ProjectTag("/projects/hello")}
			for k, v := range want {
				if r.Tags[k] != v {
					t.Errorf("instance tag %s = %q, want %q", k, r.Tags[k], v)
				}
			}
		}
	}
	if k := kinds(srv); k["snapshot"] != 1 || k["image"] != 1 || k["instance"] != 1 || k["security-group"] != 1 {
		t.Errorf("inventory after boot: %v", srv.Inventory())
	}
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if inst.State != state.Stopped {
		t.Errorf("state after Stop: %s", inst.State)
	}
	empty(t, srv)
	srv.ResetCalls()
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, c := range srv.Calls() {
		if c.Mutating() && c.Error == "" {
			t.Errorf("a second Stop changed something: %s", c.Action)
		}
	}
}

// TestBootReusesTheAMIOfADigest boots one image twice (two instances, as a
// replacement with changed settings does): the second boot uploads
// nothing. Stopping the first keeps the AMI the second runs; stopping the
// second removes it.
func TestBootReusesTheAMIOfADigest(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{})
	dir, img := smallDisk(t, "reuse")
	sp1, _ := spec(t, dir, img)
	a, err := p.Boot(ctxT(t), sp1)
	if err != nil {
		t.Fatal(err)
	}
	starts := srv.Count("StartSnapshot")
	sp2, msgs := spec(t, dir, img)
	b, err := p.Boot(ctxT(t), sp2)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Count("StartSnapshot") != starts || srv.Count("RegisterImage") != 1 {
		t.Errorf("the second boot of one digest uploaded again (StartSnapshot %d, RegisterImage %d)", srv.Count("StartSnapshot"), srv.Count("RegisterImage"))
	}
	if !strings.Contains(msgs.String(), "is AMI") {
		t.Errorf("progress does not say the AMI was reused:\n%s", msgs)
	}
	if err := p.Stop(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if k := kinds(srv); k["image"] != 1 || k["snapshot"] != 1 || k["security-group"] != 1 || k["instance"] != 1 {
		t.Errorf("after stopping one of two instances of an AMI: %v", srv.Inventory())
	}
	if err := p.Stop(ctxT(t), b); err != nil {
		t.Fatal(err)
	}
	empty(t, srv)
}

// TestBootOpensExactlyTheAppsPortsForIngress checks the security group
// against the target's ingress, and that a boot with other ingress makes
// the rules exactly that.
func TestBootOpensExactlyTheAppsPortsForIngress(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{})
	dir, img := smallDisk(t, "sg")
	img.Ports = []int{8080, 9090}
	s := settings()
	s.Ingress = []string{"0.0.0.0/0", "198.51.100.0/24"}
	sp, _ := spec(t, dir, img, withSettings(s))
	a, err := p.Boot(ctxT(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := recordOf(a)
	want := []string{"tcp 8080-8080 from 0.0.0.0/0", "tcp 8080-8080 from 198.51.100.0/24", "tcp 9090-9090 from 0.0.0.0/0", "tcp 9090-9090 from 198.51.100.0/24"}
	if got := srv.Ingress(rec.GroupID); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rules %v, want %v", got, want)
	}
	s2 := settings()
	s2.Ingress = []string{"203.0.113.7/32"}
	sp2, _ := spec(t, dir, img, withSettings(s2))
	b, err := p.Boot(ctxT(t), sp2)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"tcp 8080-8080 from 203.0.113.7/32", "tcp 9090-9090 from 203.0.113.7/32"}
	if got := srv.Ingress(rec.GroupID); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rules after an ingress change %v, want %v", got, want)
	}
	for _, inst := range []*state.Instance{a, b} {
		if err := p.Stop(ctxT(t), inst); err != nil {
			t.Fatal(err)
		}
	}
	empty(t, srv)
}

// TestBootUEFIImage registers a UEFI disk with boot mode uefi; a Xen
// instance type (t2) cannot boot it, and the boot leaves nothing.
func TestBootUEFIImage(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{})
	dir, img := smallDisk(t, "uefi")
	img.Boot = pack.BootUEFI
	sp, _ := spec(t, dir, img)
	inst, err := p.Boot(ctxT(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := recordOf(inst)
	if im, _ := srv.Image(rec.ImageID); im.BootMode != "uefi" {
		t.Errorf("boot mode %q, want uefi", im.BootMode)
	}
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	s := settings()
	s.InstanceType = "t2.micro"
	sp2, _ := spec(t, dir, img, withSettings(s))
	if _, err := p.Boot(ctxT(t), sp2); err == nil || !strings.Contains(err.Error(), "RunInstances") || !strings.Contains(err.Error(), "uefi") {
		t.Errorf("a UEFI AMI on t2.micro: %v", err)
	}
	empty(t, srv)
	if _, err := os.Stat(sp2.RunDir); !os.IsNotExist(err) {
		t.Errorf("a failed boot left its run directory: %v", err)
	}
	_ = filepath.Join
}

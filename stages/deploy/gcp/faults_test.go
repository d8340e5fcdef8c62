package gcp

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/gcp/gcefake"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// A fault at every step of a boot, for good (HTTP 400, or an operation
// that ends DONE with an error): the boot fails saying where, and leaves
// nothing in Compute Engine or Cloud Storage, and no run directory. (A
// fault that also hits the removal is TestFailedCleanupLeavesARecordThatStopFinishes.)
func TestFaultAtEveryStepLeavesNothingBehind(t *testing.T) {
	type step struct {
		name  string
		gce   *gcefake.Fault // a fault of the compute fake
		gcs   *gcefake.Fault // or of the storage fake
		want  string         // in the error
		okay  bool           // the boot goes on (with a warning)
		said  string         // the warning
		setup func(s *Settings)
	}
	quota := gcefake.OpError("QUOTA_EXCEEDED", "Quota 'CPUS' exceeded.  Limit: 8.0 in region europe-west1.")
	steps := []step{
		{name: "machine type", gce: &gcefake.Fault{Method: "compute.machineTypes.get", Status: 400}, want: "look up machine type e2-small"},
		{name: "image lookup", gce: &gcefake.Fault{Method: "compute.images.get", Status: 400}, want: "look for image"},
		{name: "bucket lookup", gcs: &gcefake.Fault{Method: "storage.buckets.get", Status: 400}, want: "look for bucket", setup: createBucket},
		{name: "bucket creation", gcs: &gcefake.Fault{Method: "storage.buckets.insert", Status: 400}, want: "create bucket", setup: createBucket},
		{name: "upload start", gcs: &gcefake.Fault{Method: "storage.objects.insert", Status: 400}, want: "upload the image archive"},
		{name: "upload chunk", gcs: &gcefake.Fault{Method: "storage.uploads.put", Call: 2, Status: 400}, want: "upload the image archive"},
		{name: "image insert", gce: &gcefake.Fault{Method: "compute.images.insert", Status: 400}, want: "create image"},
		{name: "image import", gce: &gcefake.Fault{Method: "compute.images.insert", Operation: gcefake.OpError("INVALID_FIELD_VALUE", "cannot read the archive")}, want: "INVALID_FIELD_VALUE: cannot read the archive"},
		{name: "wait for image", gce: &gcefake.Fault{Method: "compute.globalOperations.wait", Call: 1, Status: 400}, want: "wait for create image"},
		{name: "staged object removal", gcs: &gcefake.Fault{Method: "storage.objects.delete", Status: 400}, okay: true, said: "delete the staged archive"},
		{name: "firewall insert", gce: &gcefake.Fault{Method: "compute.firewalls.insert", Status: 400}, want: "create firewall rule"},
		{name: "firewall operation", gce: &gcefake.Fault{Method: "compute.firewalls.insert", Operation: gcefake.OpError("RESOURCE_OPERATION_RATE_EXCEEDED", "too many firewall changes")}, want: "RESOURCE_OPERATION_RATE_EXCEEDED"},
		{name: "instance insert", gce: &gcefake.Fault{Method: "compute.instances.insert", Status: 400}, want: "create instance"},
		{name: "instance quota", gce: &gcefake.Fault{Method: "compute.instances.insert", Operation: quota}, want: "QUOTA_EXCEEDED: Quota 'CPUS' exceeded"},
		{name: "instance quota, created bucket", gce: &gcefake.Fault{Method: "compute.instances.insert", Operation: quota}, want: "QUOTA_EXCEEDED", setup: createBucket},
		{name: "wait for instance", gce: &gcefake.Fault{Method: "compute.zoneOperations.wait", Call: 1, Status: 400}, want: "wait for create instance"},
		{name: "instance addresses", gce: &gcefake.Fault{Method: "compute.instances.get", Call: 1, Status: 400}, want: "read instance"},
		{name: "serial console", gce: &gcefake.Fault{Method: "compute.instances.getSerialPortOutput", Status: 400}, want: "read the serial console"},
		{name: "orphan listing", gce: &gcefake.Fault{Method: "compute.instances.list", Status: 400}, okay: true, said: "list the instances of app hello"},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			img, dir := e.image(pack.BootBIOS, uint64(20+i))
			s := testSettings()
			if st.setup != nil {
				st.setup(s)
			}
			if st.gce != nil {
				e.gce.Inject(*st.gce)
			}
			if st.gcs != nil {
				e.gcs.Inject(*st.gcs)
			}
			spec := e.spec(testTarget(s), img, dir)
			inst, err := e.p.Boot(context.Background(), spec)
			if st.okay {
				if err != nil {
					t.Fatal(err)
				}
				if !e.saidContaining(st.said) {
					t.Errorf("no warning %q", st.said)
				}
				e.gce.ClearFaults()
				e.gcs.ClearFaults()
				if err := e.p.Stop(context.Background(), inst); err != nil {
					t.Fatal(err)
				}
				e.nothingLeft()
				return
			}
			if err == nil || !strings.Contains(err.Error(), st.want) {
				t.Fatalf("err = %v; want %q", err, st.want)
			}
			if inst != nil {
				t.Errorf("a failed boot returned instance %s (%s): %v", inst.ID, inst.State, err)
			}
			e.nothingLeft()
			if _, err := os.Stat(spec.RunDir); !os.IsNotExist(err) {
				t.Errorf("run directory left: %v", err)
			}
		})
	}
}

func createBucket(s *Settings) { s.Bucket, s.CreateBucket = "new-bucket", true }

// When removing what a failed boot made fails too, the boot returns the
// instance as failed with what is left; a Stop of that record (what down
// and the next up do) removes it.
func TestFailedCleanupLeavesARecordThatStopFinishes(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 40)
	e.gce.Inject(gcefake.Fault{Method: "compute.instances.insert", Operation: gcefake.OpError("ZONE_RESOURCE_POOL_EXHAUSTED", "The zone does not have enough resources")})
	e.gce.Inject(gcefake.Fault{Method: "compute.firewalls.delete", Status: 400})
	inst, err := e.p.Boot(context.Background(), e.e2spec(img, dir))
	if err == nil || !strings.Contains(err.Error(), "ZONE_RESOURCE_POOL_EXHAUSTED") || !strings.Contains(err.Error(), "try another zone") ||
		!strings.Contains(err.Error(), "left: delete firewall rule") || !strings.Contains(err.Error(), "unikfile down") {
		t.Fatalf("err = %v", err)
	}
	if inst == nil || inst.State != state.Failed || len(inst.Config) == 0 {
		t.Fatalf("instance %+v", inst)
	}
	e.gce.ClearFaults()
	if err := e.provider().Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

func (e *env) e2spec(img *pack.Image, dir string) deploy.Spec {
	return e.spec(testTarget(testSettings()), img, dir)
}

// Calls whose answers are lost (GCE applied them, then the connection
// failed) are retried with the same request ID: nothing is made twice.
func TestLostAnswersAreRetriedWithTheSameRequestID(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 41)
	for _, m := range []string{"compute.images.insert", "compute.firewalls.insert", "compute.instances.insert", "compute.instances.delete", "compute.images.delete"} {
		e.gce.Inject(gcefake.Fault{Method: m, Call: 1, Status: 503, Apply: true})
	}
	e.gcs.Inject(gcefake.Fault{Method: "storage.uploads.put", Call: 1, Status: 503})
	inst, err := e.p.Boot(context.Background(), e.e2spec(img, dir))
	if err != nil {
		t.Fatal(err)
	}
	calls := e.gce.Calls()
	for _, m := range []string{"compute.images.insert", "compute.firewalls.insert", "compute.instances.insert"} {
		if count(calls, m) != 2 {
			t.Errorf("%s called %d times, want 2 (the retry)", m, count(calls, m))
		}
	}
	if len(e.gce.Images()) != 1 || len(e.gce.Instances()) != 1 || len(e.gce.Firewalls()) != 1 {
		t.Errorf("images %v, instances %v, firewalls %v", e.gce.Images(), e.gce.Instances(), e.gce.Firewalls())
	}
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

// Errors name the permission that is missing and a role that grants it.
func TestMissingPermissionIsNamed(t *testing.T) {
	for perm, role := range map[string]string{
		"compute.firewalls.create":      "roles/compute.securityAdmin",
		"compute.instances.setMetadata": "roles/compute.instanceAdmin.v1",
		"compute.images.create":         "roles/compute.storageAdmin",
		"storage.objects.get":           "roles/storage.objectAdmin",
	} {
		t.Run(perm, func(t *testing.T) {
			e := newEnv(t)
			img, dir := e.image(pack.BootBIOS, 42)
			e.gce.Deny(perm)
			_, err := e.p.Boot(context.Background(), e.e2spec(img, dir))
			if err == nil || !strings.Contains(err.Error(), "permission "+perm+" is missing") || !strings.Contains(err.Error(), role) {
				t.Fatalf("err = %v", err)
			}
			e.nothingLeft()
		})
	}
}

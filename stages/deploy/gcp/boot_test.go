package gcp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/unikfile/unikfile/stages/deploy/gcp/gcefake"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// A boot against the fake, whose stand-in guest prints the init's
// markers: the image is uploaded (resumable, in chunks) and imported with
// the guest OS features it needs, the firewall rule opens exactly the
// app's port to the ingress ranges, the instance is labelled and reached
// at its external address; Stop removes all of it, and again does nothing.
func TestBootWithStandInGuestMakesImageFirewallAndInstance(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 1)
	spec := e.spec(testTarget(testSettings()), img, dir)
	inst, err := e.p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != state.Running || inst.Provider != Name || inst.ImageDigest != img.Digest {
		t.Errorf("instance %+v", inst)
	}
	if len(inst.Ports) != 1 || !strings.HasPrefix(inst.Ports[0].Bind, "203.0.113.") || inst.Ports[0].Host != 8080 || inst.Ports[0].Guest != 8080 {
		t.Errorf("ports %+v: want the external address and 8080", inst.Ports)
	}
	cfg, ok, err := configOf(inst)
	if !ok || err != nil {
		t.Fatalf("config: %v %v", ok, err)
	}

	gi := e.gce.Instance(cfg.Instance)
	if gi == nil {
		t.Fatal("no instance in GCE")
	}
	if gi.Labels[labelManaged] != managedValue || gi.Labels[labelImage] != cfg.Image || gi.Labels[labelApp] != "hello" || gi.Labels[labelTarget] != "prod" || gi.Labels[labelInstance] != spec.ID {
		t.Errorf("instance labels %v", gi.Labels)
	}
	if gi.Metadata == nil || len(gi.Metadata.Items) != 1 || gi.Metadata.Items[0].Key != "serial-port-enable" || *gi.Metadata.Items[0].Value != "TRUE" {
		t.Errorf("instance metadata %+v", gi.Metadata)
	}
	if gi.Tags == nil || !slices.Equal(gi.Tags.Items, []string{cfg.Firewall}) || len(gi.ServiceAccounts) != 0 {
		t.Errorf("tags %+v, service accounts %v", gi.Tags, gi.ServiceAccounts)
	}
	if !strings.HasSuffix(gi.MachineType, "/zones/"+testZone+"/machineTypes/e2-small") {
		t.Errorf("machine type %s", gi.MachineType)
	}

	im := e.gce.Image(cfg.Image)
	if im == nil || im.Status != "READY" || im.DiskSizeGb != 1 {
		t.Fatalf("image %+v", im)
	}
	var features []string
	for _, f := range im.GuestOsFeatures {
		features = append(features, f.Type)
	}
	slices.Sort(features)
	if !slices.Equal(features, []string{"GVNIC", "VIRTIO_SCSI_MULTIQUEUE"}) {
		t.Errorf("guest OS features %v", features)
	}
	if im.Labels[labelDigest] != img.Digest[:63] || cfg.Image != "unikfile-"+img.Digest[:54] {
		t.Errorf("image %s labels %v: want the archive's digest", cfg.Image, im.Labels)
	}

	fw := e.gce.Firewall(cfg.Firewall)
	if fw == nil || len(fw.Allowed) != 1 || fw.Allowed[0].IPProtocol != "tcp" || !slices.Equal(fw.Allowed[0].Ports, []string{"8080"}) ||
		!slices.Equal(fw.SourceRanges, []string{"0.0.0.0/0"}) || !slices.Equal(fw.TargetTags, []string{cfg.Firewall}) {
		t.Errorf("firewall %+v", fw)
	}

	calls := e.gcs.Calls()
	if count(calls, "storage.objects.insert") != 1 || count(calls, "storage.uploads.put") < 2 {
		t.Errorf("storage calls %v: want one resumable upload in several chunks", calls)
	}
	if !e.saidContaining("% (0.") || !e.saidContaining("hello: uploading image: ") {
		t.Errorf("no progress line during the upload in %q", e.said)
	}
	if objs := e.gcs.Objects(); len(objs) != 0 {
		t.Errorf("the staged archive is still there: %v", objs)
	}
	log, _ := os.ReadFile(filepath.Join(spec.RunDir, ConsoleFile))
	if !bytes.Contains(log, []byte("unikfile-init: ready")) || !bytes.Contains(log, []byte("stand-in guest")) {
		t.Errorf("console copy:\n%s", log)
	}

	if err := e.p.Refresh(context.Background(), inst); err != nil || inst.State != state.Running {
		t.Errorf("refresh: %v, state %s", err, inst.State)
	}
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	if inst.State != state.Stopped {
		t.Errorf("state after stop %s", inst.State)
	}
	e.nothingLeft()
	before := len(e.gce.Calls())
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Errorf("a second stop: %v", err)
	}
	if len(e.gce.Calls()) == before {
		t.Error("a second stop did not look")
	}
	e.nothingLeft()
}

func TestUEFIImageIsUEFICompatibleWithoutSecureBoot(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootUEFI, 2)
	s := testSettings()
	s.NIC = NICGVNIC
	inst, err := e.p.Boot(context.Background(), e.spec(testTarget(s), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, _ := configOf(inst)
	var features []string
	for _, f := range e.gce.Image(cfg.Image).GuestOsFeatures {
		features = append(features, f.Type)
	}
	if !slices.Contains(features, "UEFI_COMPATIBLE") {
		t.Errorf("guest OS features %v: want UEFI_COMPATIBLE", features)
	}
	gi := e.gce.Instance(cfg.Instance)
	if gi.ShieldedInstanceConfig == nil || gi.ShieldedInstanceConfig.EnableSecureBoot || gi.NetworkInterfaces[0].NicType != "GVNIC" {
		t.Errorf("shielded %+v, nic %s", gi.ShieldedInstanceConfig, gi.NetworkInterfaces[0].NicType)
	}
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

// Two instances of one archive share its image, which is uploaded and
// imported once and deleted with the last instance that uses it.
func TestImageIsReusedByDigestAndDeletedWhenUnused(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 3)
	a, err := e.p.Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	t2 := testTarget(testSettings())
	t2.Name = "staging"
	b, err := e.provider().Boot(context.Background(), e.spec(t2, img, dir))
	if err != nil {
		t.Fatal(err)
	}
	if n := count(e.gce.Calls(), "compute.images.insert"); n != 1 {
		t.Errorf("images.insert called %d times", n)
	}
	if n := count(e.gcs.Calls(), "storage.objects.insert"); n != 1 {
		t.Errorf("%d uploads", n)
	}
	if !e.saidContaining("exists; using it") {
		t.Error("the second boot did not say it reuses the image")
	}
	if err := e.p.Stop(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if len(e.gce.Images()) != 1 {
		t.Errorf("the image went while an instance uses it: %v", e.gce.Images())
	}
	if err := e.p.Stop(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

func TestNoIngressWarnsAndOpensNothing(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 4)
	s := testSettings()
	s.Ingress, s.ExternalIP = nil, false
	inst, err := e.p.Boot(context.Background(), e.spec(testTarget(s), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !e.saidContaining(`nobody can reach port 8080`) || !e.saidContaining(`ingress = ["0.0.0.0/0"]`) {
		t.Error("no warning that the port is closed, saying how to open it")
	}
	if fws := e.gce.Firewalls(); len(fws) != 0 {
		t.Errorf("firewall rules %v", fws)
	}
	if len(inst.Ports) != 1 || !strings.HasPrefix(inst.Ports[0].Bind, "10.") {
		t.Errorf("ports %+v: want the internal address", inst.Ports)
	}
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

// An app that exits before it is ready: the instance is returned as
// exited with the stand-in guest's status, nothing is left in GCP, and
// the console stays readable from the local copy.
func TestExitBeforeReadyWithStandInGuestLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.setGuest(func(inst *compute.Instance, f []string) gcefake.Guest { return gcefake.ExitingGuest(inst, f, 3) })
	img, dir := e.image(pack.BootBIOS, 5)
	spec := e.spec(testTarget(testSettings()), img, dir)
	inst, err := e.p.Boot(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3 before it was ready") || !strings.Contains(err.Error(), "cannot open config") {
		t.Fatalf("err = %v", err)
	}
	if inst == nil || inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 3 {
		t.Fatalf("instance %+v", inst)
	}
	e.nothingLeft()
	var out bytes.Buffer
	if err := e.p.Logs(context.Background(), inst, false, &out); err != nil || !strings.Contains(out.String(), "exit status 3") {
		t.Errorf("logs: %v\n%s", err, out.String())
	}
	if err := e.p.Stop(context.Background(), inst); err != nil || inst.State != state.Exited {
		t.Errorf("stop: %v, %s", err, inst.State)
	}
}

func TestNeverReadyTimesOutAndLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.setGuest(gcefake.SilentGuest)
	img, dir := e.image(pack.BootBIOS, 6)
	spec := e.spec(testTarget(testSettings()), img, dir)
	spec.Timeout = 300 * time.Millisecond
	inst, err := e.p.Boot(context.Background(), spec)
	if err == nil || inst != nil || !strings.Contains(err.Error(), "was not ready after 300ms") || !strings.Contains(err.Error(), "Booting from Hard Disk") {
		t.Fatalf("inst %v, err = %v", inst, err)
	}
	e.nothingLeft()
	if _, err := os.Stat(spec.RunDir); !os.IsNotExist(err) {
		t.Errorf("run directory left: %v", err)
	}
}

// A cancelled boot (Ctrl-C) removes what it made.
func TestCancelledBootLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.setGuest(gcefake.SilentGuest)
	img, dir := e.image(pack.BootBIOS, 7)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(e.gce.Instances()) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := e.p.Boot(ctx, e.spec(testTarget(testSettings()), img, dir)); err == nil {
		t.Fatal("no error")
	}
	e.nothingLeft()
}

// Attached, the console goes to Console and Boot returns with the app's
// exit status.
func TestAttachedBootFollowsTheConsoleUntilTheAppExits(t *testing.T) {
	e := newEnv(t)
	e.setGuest(func(inst *compute.Instance, f []string) gcefake.Guest {
		g := gcefake.ReadyGuest(inst, f, 5*time.Millisecond)
		g.Lines = append(g.Lines, gcefake.Line{After: 200 * time.Millisecond, Text: "app: bye"})
		st := 0
		g.Exit = &st
		return g
	})
	img, dir := e.image(pack.BootBIOS, 8)
	spec := e.spec(testTarget(testSettings()), img, dir)
	var out bytes.Buffer
	spec.Attach, spec.Console = true, &out
	inst, err := e.p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != state.Exited || *inst.ExitStatus != 0 {
		t.Errorf("instance %+v", inst)
	}
	for _, want := range []string{"unikfile-init: ready", "app: bye", "unikfile-init: exit status 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out.String())
		}
	}
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

// An attached boot keeps a local copy of the console for as long as it
// follows it; that copy rotates at ConsoleMax, so a chatty app that runs
// for days does not fill the disk, and once the instance is gone `logs`
// prints both generations in order, ending with the exit status.
func TestAttachedConsoleCopyRotatesAndLogsReadsBothGenerations(t *testing.T) {
	e := newEnv(t)
	const lines = 600
	e.setGuest(func(inst *compute.Instance, f []string) gcefake.Guest {
		g := gcefake.ReadyGuest(inst, f, 5*time.Millisecond)
		for i := range lines {
			g.Lines = append(g.Lines, gcefake.Line{After: time.Duration(10+i/4) * time.Millisecond, Text: fmt.Sprintf("app: line %04d %s", i, strings.Repeat("x", 80))})
		}
		st := 0
		g.Exit = &st
		return g
	})
	e.p.ConsoleMax = 8 << 10
	img, dir := e.image(pack.BootBIOS, 10)
	spec := e.spec(testTarget(testSettings()), img, dir)
	spec.Attach, spec.Console = true, io.Discard
	inst, err := e.p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.p.Stop(context.Background(), inst); err != nil || inst.State != state.Exited {
		t.Fatalf("stop: %v, %s", err, inst.State)
	}
	e.nothingLeft()
	// The copy is two generations, each about ConsoleMax (a poll's bytes
	// are never split), and nothing else.
	files, _ := filepath.Glob(filepath.Join(spec.RunDir, ConsoleFile+"*"))
	if len(files) != 2 {
		t.Fatalf("console files %v, want console.log and console.log.1", files)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || fi.Size() > 2*e.p.ConsoleMax+64<<10 {
			t.Errorf("%s: %v, %d bytes; want about %d", f, err, fi.Size(), e.p.ConsoleMax)
		}
	}
	var out bytes.Buffer
	if err := e.provider().Logs(context.Background(), inst, false, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasSuffix(got, "unikfile-init: exit status 0\n") {
		t.Errorf("logs does not end with the exit status:\n%s", got[max(0, len(got)-300):])
	}
	// What logs prints is a run of the app's lines without a gap or a
	// repeat, ending with the last.
	var nums []int
	for _, l := range strings.Split(got, "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "app: line %d", &n); err == nil {
			nums = append(nums, n)
		}
	}
	if len(nums) == 0 || nums[len(nums)-1] != lines-1 {
		t.Fatalf("logs lacks the last line: %d lines read", len(nums))
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			t.Fatalf("logs jumps from line %d to %d", nums[i-1], nums[i])
		}
	}
	if len(nums) == lines {
		t.Errorf("all %d lines kept in %d bytes: the copy did not rotate", lines, len(got))
	}
}

// getSerialPortOutput's start and next: logs -f follows a console that
// GCE keeps only the end of, says what was lost, and ends when the
// instance stops.
func TestLogsFollowSerialConsoleWithStartAndNext(t *testing.T) {
	e := newEnv(t)
	e.gce.Close()
	e.gce = gcefake.New(gcefake.Options{Objects: e.gcs.Open, SerialBuffer: 4096, Guest: func(inst *compute.Instance, f []string) gcefake.Guest {
		g := gcefake.ReadyGuest(inst, f, 5*time.Millisecond)
		for i := range 200 {
			g.Lines = append(g.Lines, gcefake.Line{After: time.Duration(300+i) * time.Millisecond, Text: "line " + strings.Repeat("x", 40) + " " + string(rune('A'+i%26))})
		}
		st := 0
		g.Exit = &st
		return g
	}})
	e.p = e.provider()
	img, dir := e.image(pack.BootBIOS, 9)
	inst, err := e.p.Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan error)
	go func() { done <- e.provider().Logs(context.Background(), inst, true, &out) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs -f did not end when the instance stopped")
	}
	got := out.String()
	if !strings.Contains(got, "unikfile-init: exit status 0") || strings.Count(got, "line xxxx") < 100 || strings.Contains(got, "\r") {
		t.Errorf("followed console (%d bytes):\n%s", len(got), got)
	}
	// Read from the start, the first bytes are gone.
	var again bytes.Buffer
	if err := e.provider().Logs(context.Background(), inst, false, &again); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(again.String(), "bytes of the serial console are gone") || len(again.String()) > 4096+200 {
		t.Errorf("console read whole (%d bytes):\n%s", again.Len(), again.String())
	}
	if err := e.p.Refresh(context.Background(), inst); err != nil || inst.State != state.Exited || *inst.ExitStatus != 0 {
		t.Errorf("refresh of a stopped instance: %v %s", err, inst.State)
	}
	if err := e.p.Stop(context.Background(), inst); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

// A record without config (its booter died before recording it) is
// refreshed and stopped from its run directory.
func TestRecordWithoutConfigIsFoundFromTheRunDirectory(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 10)
	spec := e.spec(testTarget(testSettings()), img, dir)
	if _, err := e.p.Boot(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	rec := &state.Instance{ID: spec.ID, Provider: Name, RunDir: spec.RunDir, State: state.Starting}
	if err := e.provider().Refresh(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if rec.State != state.Starting || len(rec.Config) == 0 || len(rec.Ports) != 1 {
		t.Errorf("refreshed record %+v", rec)
	}
	if err := e.provider().Stop(context.Background(), &state.Instance{ID: spec.ID, Provider: Name, RunDir: spec.RunDir, State: state.Starting}); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

// An instance of the app that unikfile has no record of (a lost state
// directory) is removed once its replacement is ready; the image they
// share stays.
func TestOrphanInstanceOfTheAppIsRemovedByLabels(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 11)
	orphan, err := e.p.Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	oc, _, _ := configOf(orphan)
	// Another app of the same target is not an orphan of this one.
	other, odir := e.image(pack.BootBIOS, 12)
	other.App = "worker"
	ospec := e.spec(testTarget(testSettings()), other, odir)
	ospec.ID = state.NewID("worker")
	ospec.RunDir = filepath.Join(e.dir, "run", ospec.ID)
	worker, err := e.p.Boot(context.Background(), ospec)
	if err != nil {
		t.Fatal(err)
	}
	next, err := e.provider().Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	nc, _, _ := configOf(next)
	wc, _, _ := configOf(worker)
	if got := e.gce.Instances(); !slices.Equal(got, sorted(nc.Instance, wc.Instance)) {
		t.Errorf("instances %v: want %s and %s, the orphan %s removed", got, nc.Instance, wc.Instance, oc.Instance)
	}
	if e.gce.Firewall(oc.Firewall) != nil {
		t.Error("the orphan's firewall rule is still there")
	}
	if e.gce.Image(nc.Image) == nil {
		t.Error("the shared image went with the orphan")
	}
	for _, i := range []*state.Instance{next, worker} {
		if err := e.p.Stop(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	e.nothingLeft()
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// The image is deleted (another project's last instance of it went)
// between the boot finding it and creating the instance: the boot makes
// it again.
func TestImageDeletedBeforeTheInstanceIsMadeAgain(t *testing.T) {
	e := newEnv(t)
	img, dir := e.image(pack.BootBIOS, 13)
	first, err := e.p.Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	fc, _, _ := configOf(first)
	e.gce.Inject(gcefake.Fault{Method: "compute.instances.insert", Call: 1, Before: func() {
		if err := e.provider().Stop(context.Background(), first); err != nil {
			t.Error(err)
		}
	}})
	second, err := e.provider().Boot(context.Background(), e.spec(testTarget(testSettings()), img, dir))
	if err != nil {
		t.Fatal(err)
	}
	if !e.saidContaining("was deleted meanwhile; making it again") || e.gce.Image(fc.Image) == nil {
		t.Errorf("images %v", e.gce.Images())
	}
	if err := e.p.Stop(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	e.nothingLeft()
}

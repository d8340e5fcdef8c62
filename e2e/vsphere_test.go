package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vcsim is govmomi's vSphere simulator, started by the test in this
// process on 127.0.0.1; the unikfile binary talks to it over HTTP like
// to a vCenter. It runs no guest: standIn plays the guest's init by
// writing each VM's console file into the simulator's datastore folder.
type vcsim struct {
	t     *testing.T
	url   string // without credentials
	dsDir string
	c     *govmomi.Client
	stop  chan struct{}
	wg    sync.WaitGroup
}

const vcsimUser, vcsimPass = "e2e-user", "e2e-Passw0rd"

func startVcsim(t *testing.T) *vcsim {
	t.Helper()
	m := simulator.VPX()
	m.Machine = 0
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(vcsimUser, vcsimPass)}
	srv := m.Service.NewServer()
	t.Cleanup(func() { srv.Close(); m.Remove() })
	u := *srv.URL
	c, err := govmomi.NewClient(context.Background(), &u, true)
	if err != nil {
		t.Fatal(err)
	}
	u.User = nil
	v := &vcsim{t: t, url: u.String(), c: c, stop: make(chan struct{})}
	ds, err := find.NewFinder(c.Client).Datastore(context.Background(), "/DC0/datastore/LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	var dsm mo.Datastore
	if err := ds.Properties(context.Background(), ds.Reference(), []string{"summary"}, &dsm); err != nil {
		t.Fatal(err)
	}
	v.dsDir = dsm.Summary.Url
	return v
}

func (v *vcsim) env() []string {
	return []string{"GOVC_USERNAME=" + vcsimUser, "GOVC_PASSWORD=" + vcsimPass}
}

// vms are the simulator's VMs by name.
func (v *vcsim) vms() map[string]*object.VirtualMachine {
	f := find.NewFinder(v.c.Client)
	dc, err := f.Datacenter(context.Background(), "DC0")
	if err != nil {
		v.t.Fatal(err)
	}
	f.SetDatacenter(dc)
	l, _ := f.VirtualMachineList(context.Background(), "*")
	out := map[string]*object.VirtualMachine{}
	for _, vm := range l {
		out[vm.Name()] = vm
	}
	return out
}

// standIn writes, for each VM that powers on, what the guest's init
// prints once the app listens: its DHCP address (192.0.2.20, a
// documentation address: nothing is sent to it) and the ready marker.
func (v *vcsim) standIn() {
	seen := map[string]bool{}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for {
			select {
			case <-v.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for name, vm := range v.vms() {
				if seen[name] {
					continue
				}
				var m mo.VirtualMachine
				if vm.Properties(context.Background(), vm.Reference(), []string{"runtime.powerState"}, &m) != nil ||
					m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
					continue
				}
				seen[name] = true
				console := "unikfile-init: address 192.0.2.20/24 via dhcp\r\nserving on :8080\r\nunikfile-init: ready\r\n"
				_ = os.WriteFile(filepath.Join(v.dsDir, name, "console.log"), []byte(console), 0o644)
			}
		}
	}()
	v.t.Cleanup(func() { close(v.stop); v.wg.Wait() })
}

// TestVSphereUpPsLogsDownAgainstVcsimWithStandInGuest runs the unikfile
// binary against vcsim: up builds the app as a streamOptimized VMDK,
// uploads it and boots a VM; the stand-in guest answers on the console;
// ps shows the guest's address; the uploaded disk is the image's; a
// second up changes nothing; logs reads the console; a VM deleted in
// "vCenter" shows as failed; down leaves no VM and no VM folder.
func TestVSphereUpPsLogsDownAgainstVcsimWithStandInGuest(t *testing.T) {
	needBoot(t)
	v := startVcsim(t)
	v.standIn()
	p := newProject(t, map[string]string{
		"Unikfile": fmt.Sprintf(`app "a" {
  language = "go"
  ports    = [8080]
}
target "vmware" {
  provider = "vsphere"
  apps     = [app.a]
  vsphere {
    url        = %q
    datacenter = "DC0"
    datastore  = "LocalDS_0"
    network    = "VM Network"
    cluster    = "DC0_C0"
  }
}
`, v.url),
		"go.mod":  goMod,
		"main.go": helloSource("hello from vSphere"),
	})
	p.env = append(p.env, v.env()...)

	r := p.ok("up")
	if !strings.Contains(r.stdout, "vmware/a: started") || !strings.Contains(r.stdout, "at http://192.0.2.20:8080/") {
		t.Errorf("up printed:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "uploading image") {
		t.Errorf("no upload progress:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, vcsimPass) {
		t.Error("up printed the password")
	}
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "running" || len(insts[0].Ports) != 1 || insts[0].Ports[0].Bind != "192.0.2.20" {
		t.Fatalf("ps: %+v", insts)
	}
	id := insts[0].ID
	if v.vms()["unikfile-"+id] == nil {
		t.Fatalf("no VM unikfile-%s in vcsim: %v", id, v.vms())
	}
	raw, err := psConfig(p)
	if err != nil || strings.Contains(raw, vcsimPass) || strings.Contains(raw, vcsimUser) {
		t.Errorf("ps --json config holds credentials or failed (%v): %s", err, raw)
	}

	// The datastore holds the image's disk, byte for byte.
	var vmdk string
	for _, row := range images(t, p) {
		if row.Format == "vmdk" && row.Digest == insts[0].ImageDigest {
			vmdk = row.File
		}
	}
	if vmdk == "" {
		t.Fatalf("no vmdk image %s in `images`", insts[0].ImageDigest)
	}
	plain := filepath.Join(t.TempDir(), "plain.img")
	if out, err := exec.Command("qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, plain).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(plain)
	got, err := os.ReadFile(filepath.Join(v.dsDir, "unikfile-images", insts[0].ImageDigest, "disk-flat.vmdk"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("uploaded disk: %d bytes (%v), qemu-img reads the image as %d bytes", len(got), err, len(want))
	}

	r = p.ok("up")
	if !strings.Contains(r.stdout, "vmware/a: unchanged "+id) || len(v.vms()) != 1 {
		t.Errorf("second up: %s; VMs %v", r.stdout, v.vms())
	}
	if r := p.ok("logs", "a"); !strings.Contains(r.stdout, "serving on :8080\nunikfile-init: ready\n") {
		t.Errorf("logs: %q", r.stdout)
	}

	// Deleted behind unikfile's back.
	vm := v.vms()["unikfile-"+id]
	if task, err := vm.PowerOff(context.Background()); err == nil {
		_ = task.Wait(context.Background())
	}
	if task, err := vm.Destroy(context.Background()); err != nil || task.Wait(context.Background()) != nil {
		t.Fatal("destroy in vcsim failed")
	}
	if insts := p.ps(); len(insts) != 1 || insts[0].State != "failed" {
		t.Errorf("ps after the VM was deleted in vCenter: %+v", insts)
	}

	p.ok("down")
	for name := range v.vms() {
		if strings.HasPrefix(name, "unikfile-") {
			t.Errorf("VM %s left after down", name)
		}
	}
	ents, _ := os.ReadDir(v.dsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "unikfile-") && e.Name() != "unikfile-images" {
			t.Errorf("datastore folder %s left after down", e.Name())
		}
	}
	if len(p.ps()) != 0 {
		t.Error("instances left after down")
	}
}

func psConfig(p *project) (string, error) {
	var insts []struct {
		Config json.RawMessage `json:"config"`
	}
	r := p.ok("ps", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &insts); err != nil || len(insts) == 0 {
		return "", fmt.Errorf("ps --json: %v", err)
	}
	return string(insts[0].Config), nil
}

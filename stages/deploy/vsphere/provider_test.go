package vsphere

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

// messages collects a spec's progress lines.
type messages struct {
	mu    sync.Mutex
	lines []string
}

func (m *messages) say(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = append(m.lines, s)
}

func (m *messages) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.lines, "\n")
}

// The whole call sequence of `up`, a no-change `up`, a replacement (a new
// image, then new settings) and `down`, through the reconciler and a real
// state store, against vcsim, with the test standing in for each guest's
// init on its console file.
func TestUpNoChangeReplaceDownAgainstVcsimWithStandInGuest(t *testing.T) {
	s := newSim(t)
	s.standIn(func(string) []string { return bootLines("192.0.2.10") })
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := s.provider()
	reg := deploy.Registry{Name: func(deploy.Env) (deploy.Provider, error) { return p, nil }}
	v1 := newTestImage(t, "api", "bios")
	var msgs messages
	up := func(st *Settings, ti testImage) deploy.Result {
		t.Helper()
		res, err := deploy.Up(context.Background(), store, reg, deploy.UpRequest{
			Project: "/projects/shop", Target: s.target(st, "api"),
			Images:  map[string]deploy.AppImage{"api": {Image: ti.img, Dir: ti.dir}},
			RunRoot: t.TempDir(), Timeout: 20 * time.Second, Progress: msgs.say,
		})
		if err != nil {
			t.Fatalf("up: %v\nprogress:\n%s", err, msgs.text())
		}
		if len(res) != 1 {
			t.Fatalf("up: %d results", len(res))
		}
		return res[0]
	}

	r := up(s.settings(), v1)
	if r.Action != deploy.ActionStarted {
		t.Fatalf("first up: %s", r.Action)
	}
	first := r.Instance
	if first.State != state.Running || len(first.Ports) != 1 || first.Ports[0] != (state.Port{Bind: "192.0.2.10", Host: 8080, Guest: 8080}) {
		t.Errorf("instance: state %s, ports %v; want running at the guest's own address 192.0.2.10:8080", first.State, first.Ports)
	}
	vms := s.vms()
	if len(vms) != 1 || vms[vmPrefix+first.ID] == nil {
		t.Fatalf("VMs after up: %v, want %s%s", keys(vms), vmPrefix, first.ID)
	}
	if st, _ := powerState(context.Background(), vms[vmPrefix+first.ID]); st != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("VM is %s", st)
	}
	// The uploaded image and the VM's own disk hold the disk's bytes.
	imgDir := filepath.Join(s.dsDir, imagesDir, v1.img.Digest)
	if b, err := os.ReadFile(filepath.Join(imgDir, "disk-flat.vmdk")); err != nil || !bytes.Equal(b, v1.raw) {
		t.Errorf("uploaded flat disk: %d bytes (%v), want the image's %d raw bytes", len(b), err, len(v1.raw))
	}
	if b, err := os.ReadFile(filepath.Join(s.dsDir, vmPrefix+first.ID, "disk-flat.vmdk")); err != nil || !bytes.Equal(b, v1.raw) {
		t.Errorf("the VM's disk: %d bytes (%v), want the image's raw bytes", len(b), err)
	}
	if !strings.Contains(msgs.text(), "uploading image") {
		t.Errorf("no upload progress:\n%s", msgs.text())
	}

	// Nothing changed: nothing is uploaded, created or restarted.
	puts := s.proxy.putCount()
	s.proxy.breakUploads("-flat.vmdk")
	r = up(s.settings(), v1)
	if r.Action != deploy.ActionUnchanged || r.Instance.ID != first.ID {
		t.Fatalf("no-change up: %s %s, want unchanged %s", r.Action, r.Instance.ID, first.ID)
	}
	if s.proxy.putCount() != 0 || len(s.vms()) != 1 {
		t.Errorf("no-change up uploaded %d disks (before: %d), VMs %v", s.proxy.putCount(), puts, keys(s.vms()))
	}

	// A new image replaces the instance: new VM first, then the old goes.
	v2 := newTestImage(t, "api", "bios")
	r = up(s.settings(), v2)
	if r.Action != deploy.ActionReplaced || len(r.Removed) != 1 || r.Removed[0] != first.ID {
		t.Fatalf("new image: %s, removed %v", r.Action, r.Removed)
	}
	second := r.Instance
	if vms := s.vms(); len(vms) != 1 || vms[vmPrefix+second.ID] == nil {
		t.Errorf("VMs after the replacement: %v, want only %s%s", keys(vms), vmPrefix, second.ID)
	}
	if dirs := s.vmDirs(); len(dirs) != 1 || dirs[0] != vmPrefix+second.ID {
		t.Errorf("VM folders after the replacement: %v", dirs)
	}

	// New settings replace it too, with the image already there.
	msgs = messages{}
	bigger := s.settings()
	bigger.CPUs = 2
	r = up(bigger, v2)
	if r.Action != deploy.ActionReplaced {
		t.Fatalf("new settings: %s", r.Action)
	}
	if !strings.Contains(msgs.text(), "already on") || strings.Contains(msgs.text(), "uploading image") {
		t.Errorf("the image was not reused:\n%s", msgs.text())
	}
	var m mo.VirtualMachine
	vm := s.vms()[vmPrefix+r.Instance.ID]
	if vm == nil {
		t.Fatalf("no VM for %s", r.Instance.ID)
	}
	_ = vm.Properties(context.Background(), vm.Reference(), []string{"config.hardware"}, &m)
	if m.Config.Hardware.NumCPU != 2 {
		t.Errorf("replaced VM has %d CPUs, want 2", m.Config.Hardware.NumCPU)
	}

	// down removes every VM and VM folder; the images stay for later.
	if _, err := deploy.Down(context.Background(), store, reg, "/projects/shop", ""); err != nil {
		t.Fatal(err)
	}
	s.nothingLeft()
	imgs := s.images()
	if len(imgs) != 2 {
		t.Errorf("images after down: %v, want both kept", imgs)
	}
	if insts, _ := store.List(state.Filter{}); len(insts) != 0 {
		t.Errorf("records after down: %d", len(insts))
	}
}

// The VM is built as specified: other 64-bit guest, the firmware the disk
// boots with, the CPUs and memory, the instance's own disk on an LSI Logic
// SAS controller, a vmxnet3 NIC on the network, COM1 writing to a file in
// the VM's folder, and the extraConfig that ties it to its record.
func TestVMDevicesAsSpecifiedWithStandInGuest(t *testing.T) {
	s := newSim(t)
	s.standIn(func(string) []string { return bootLines("192.0.2.11") })
	for _, boot := range []string{"bios", "uefi"} {
		t.Run(boot, func(t *testing.T) {
			ti := newTestImage(t, "web", boot)
			st := s.settings()
			st.CPUs, st.MemoryMiB = 2, 510
			id := "web-" + boot
			inst, err := s.provider().Boot(context.Background(), ti.spec(t, s.target(st, "web"), id))
			if err != nil {
				t.Fatal(err)
			}
			vm := s.vms()[vmPrefix+id]
			if vm == nil {
				t.Fatalf("no VM %s%s", vmPrefix, id)
			}
			var m mo.VirtualMachine
			if err := vm.Properties(context.Background(), vm.Reference(), []string{"config"}, &m); err != nil {
				t.Fatal(err)
			}
			c := m.Config
			wantFW := map[string]string{"bios": "bios", "uefi": "efi"}[boot]
			if c.GuestId != "otherGuest64" || c.Firmware != wantFW || c.Hardware.NumCPU != 2 || c.Hardware.MemoryMB != 512 {
				t.Errorf("guest %s, firmware %s, %d CPUs, %d MB; want otherGuest64, %s, 2, 512 (510 rounded up to 4)",
					c.GuestId, c.Firmware, c.Hardware.NumCPU, c.Hardware.MemoryMB, wantFW)
			}
			devices := object.VirtualDeviceList(c.Hardware.Device)
			ds := "[LocalDS_0] " + vmPrefix + id
			serials := devices.SelectByType((*types.VirtualSerialPort)(nil))
			if len(serials) != 1 {
				t.Fatalf("%d serial ports", len(serials))
			}
			if fb, ok := serials[0].GetVirtualDevice().Backing.(*types.VirtualSerialPortFileBackingInfo); !ok || fb.FileName != ds+"/console.log" {
				t.Errorf("serial port backing %#v, want the file %s/console.log", serials[0].GetVirtualDevice().Backing, ds)
			}
			nics := devices.SelectByType((*types.VirtualVmxnet3)(nil))
			if len(nics) != 1 {
				t.Fatalf("vmxnet3 NICs: %d", len(nics))
			}
			if nb, ok := nics[0].GetVirtualDevice().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); !ok || nb.DeviceName != "VM Network" {
				t.Errorf("NIC backing %#v, want VM Network", nics[0].GetVirtualDevice().Backing)
			}
			disks := devices.SelectByType((*types.VirtualDisk)(nil))
			if len(disks) != 1 {
				t.Fatalf("%d disks", len(disks))
			}
			d := disks[0].(*types.VirtualDisk)
			if fb := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); fb.FileName != ds+"/disk.vmdk" {
				t.Errorf("disk %s, want the instance's own copy %s/disk.vmdk", fb.FileName, ds)
			}
			if d.CapacityInBytes != int64(len(ti.raw)) {
				t.Errorf("disk capacity %d, want %d", d.CapacityInBytes, len(ti.raw))
			}
			if ctrl := devices.FindByKey(d.ControllerKey); ctrl == nil || devices.Type(ctrl) != "lsilogic-sas" {
				t.Errorf("disk controller %v", ctrl)
			}
			extra := map[string]string{}
			for _, o := range c.ExtraConfig {
				ov := o.GetOptionValue()
				extra[ov.Key] = fmt.Sprint(ov.Value)
			}
			if extra[keyInstance] != id || extra[keyImage] != ti.img.Digest {
				t.Errorf("extraConfig %v: want %s=%s and the image digest", extra, keyInstance, id)
			}
			if !strings.Contains(c.Annotation, id) || !strings.Contains(c.Annotation, "unikfile down") {
				t.Errorf("annotation %q", c.Annotation)
			}
			// The record's config holds where everything is and no secret.
			cfg, ok, err := ConfigOf(inst)
			if err != nil || !ok || cfg.VM != vm.Reference().Value || cfg.Firmware != wantFW {
				t.Errorf("config %+v (%v)", cfg, err)
			}
			if strings.Contains(string(inst.Config), simPass) || strings.Contains(string(inst.Config), simUser) {
				t.Errorf("the record holds credentials: %s", inst.Config)
			}
			if err := s.provider().Stop(context.Background(), inst); err != nil {
				t.Fatal(err)
			}
		})
	}
	s.nothingLeft()
}

// A failure at each step (upload, the disk copy, create, power on)
// deletes what the boot created; a retry then succeeds. A completed image
// stays: it is named by its digest and the retry reuses it.
func TestFaultAtEachStepLeavesNothingBehindWithStandInGuest(t *testing.T) {
	s := newSim(t)
	g := s.standIn(func(string) []string { return bootLines("192.0.2.12") })
	for i, step := range []struct {
		name, method, want string
	}{
		{"upload", "", "upload to [LocalDS_0] unikfile-images/"},
		{"import", "CopyVirtualDisk_Task", "copy the image disk"},
		{"create", "CreateVM_Task", "create VM"},
		{"power on", "PowerOnVM_Task", "power on VM"},
	} {
		t.Run(step.name, func(t *testing.T) {
			ti := newTestImage(t, "api", "bios")
			p := s.provider()
			if step.method == "" {
				s.proxy.breakUploads("-flat.vmdk", "500", "drop", "truncate")
			} else {
				s.fault(g, step.method, nil)
			}
			id := fmt.Sprintf("api-f%d", i)
			spec := ti.spec(t, s.target(s.settings(), "api"), id)
			inst, err := p.Boot(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), step.want) {
				t.Fatalf("Boot: %v (instance %v), want an error with %q", err, inst, step.want)
			}
			if strings.Contains(err.Error(), simPass) {
				t.Errorf("the error shows the password: %v", err)
			}
			s.clearFaults(g)
			s.nothingLeft()
			if _, err := os.Stat(spec.RunDir); !os.IsNotExist(err) {
				t.Errorf("run directory left: %v", err)
			}
			img := s.images()[ti.img.Digest]
			if step.method == "" {
				if img != nil {
					t.Errorf("a failed upload left %v", img)
				}
				if n := s.proxy.putCount(); n != 3 {
					t.Errorf("the upload was tried %d times, want 3", n)
				}
			} else if len(img) != 3 {
				t.Errorf("image folder holds %v, want the complete image (descriptor, flat disk, image.json)", img)
			}
			s.proxy.breakUploads("")
			inst, err = p.Boot(context.Background(), spec)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if err := p.Stop(context.Background(), inst); err != nil {
				t.Fatal(err)
			}
			s.nothingLeft()
		})
	}
}

// Uploads that break (an error status, a dropped connection, a datastore
// that acknowledges half the bytes) are tried again, and the disk lands
// whole.
func TestUploadIsRetriedUntilTheDatastoreHoldsEveryByte(t *testing.T) {
	s := newSim(t)
	s.standIn(func(string) []string { return bootLines("192.0.2.13") })
	ti := newTestImage(t, "api", "bios")
	p := s.provider()
	p.UploadAttempts = 4
	s.proxy.breakUploads("-flat.vmdk", "truncate", "drop", "500")
	inst, err := p.Boot(context.Background(), ti.spec(t, s.target(s.settings(), "api"), "api-retry"))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.proxy.putCount(); n != 4 {
		t.Errorf("%d uploads, want 4 (three broken, one whole)", n)
	}
	b, _ := os.ReadFile(filepath.Join(s.dsDir, imagesDir, ti.img.Digest, "disk-flat.vmdk"))
	if !bytes.Equal(b, ti.raw) {
		t.Errorf("the datastore holds %d bytes, want the %d of the disk", len(b), len(ti.raw))
	}
	if files := s.images()[ti.img.Digest]; len(files) != 3 {
		t.Errorf("image folder: %v, want descriptor, flat disk and image.json only", files)
	}
	_ = p.Stop(context.Background(), inst)
}

// An app that exits before it is ready: the instance is returned exited
// with its status, the VM is deleted, and its console stays readable.
func TestExitBeforeReadyWithStandInGuest(t *testing.T) {
	s := newSim(t)
	g := s.standIn(func(vm string) []string {
		return []string{"unikfile-init: address 192.0.2.14/24 via dhcp", "panic: no config", "unikfile-init: exit status 3"}
	})
	_ = g
	ti := newTestImage(t, "api", "bios")
	p := s.provider()
	spec := ti.spec(t, s.target(s.settings(), "api"), "api-exit")
	inst, err := p.Boot(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3 before it was ready") || !strings.Contains(err.Error(), "panic: no config") {
		t.Fatalf("Boot: %v", err)
	}
	if inst == nil || inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 3 {
		t.Fatalf("instance %+v", inst)
	}
	s.nothingLeft()
	var out bytes.Buffer
	if err := p.Logs(context.Background(), inst, false, &out); err != nil || !strings.Contains(out.String(), "panic: no config\n") {
		t.Errorf("logs: %q, %v", out.String(), err)
	}
	if err := p.Refresh(context.Background(), inst); err != nil || inst.State != state.Exited {
		t.Errorf("refresh: %s, %v", inst.State, err)
	}
}

// Stop asks for a guest shutdown first; where vSphere refuses it (no
// VMware Tools in the guest: unikfile's guests have none), the VM is
// powered off at once.
func TestStopTriesGuestShutdownThenPowersOffWithStandInGuest(t *testing.T) {
	s := newSim(t)
	g := s.standIn(func(string) []string { return bootLines("192.0.2.16") })
	ti := newTestImage(t, "api", "bios")
	p := s.provider()
	for _, tools := range []bool{true, false} {
		inst, err := p.Boot(context.Background(), ti.spec(t, s.target(s.settings(), "api"), fmt.Sprintf("api-tools-%v", tools)))
		if err != nil {
			t.Fatal(err)
		}
		vm := s.vms()[vmPrefix+inst.ID]
		if !tools {
			s.fault(g, "ShutdownGuest", &types.ToolsUnavailable{})
		}
		how, err := shutdown(context.Background(), vm, 2*time.Second, 20*time.Millisecond)
		s.clearFaults(g)
		want := map[bool]string{true: "guest shutdown", false: "power off"}[tools]
		if err != nil || how != want {
			t.Errorf("tools %v: stopped by %q (%v), want %q", tools, how, err, want)
		}
		if st, _ := powerState(context.Background(), vm); st != types.VirtualMachinePowerStatePoweredOff {
			t.Errorf("VM is %s", st)
		}
		if err := p.Stop(context.Background(), inst); err != nil || inst.State != state.Stopped {
			t.Errorf("stop: %s, %v", inst.State, err)
		}
	}
	s.nothingLeft()
}

// Credentials come from the environment and never show.
func TestCredentialsFromTheEnvironmentNeverShown(t *testing.T) {
	s := newSim(t)
	ti := newTestImage(t, "api", "bios")
	boot := func(env map[string]string, st *Settings) error {
		p := s.provider()
		p.Getenv = func(k string) string { return env[k] }
		_, err := p.Boot(context.Background(), ti.spec(t, s.target(st, "api"), "api-cred"))
		return err
	}
	err := boot(map[string]string{}, s.settings())
	if err == nil || !strings.Contains(err.Error(), "set GOVC_USERNAME and GOVC_PASSWORD") {
		t.Errorf("no credentials: %v", err)
	}
	err = boot(map[string]string{envUsername: simUser, envPassword: "wrong-password"}, s.settings())
	if err == nil || !strings.Contains(err.Error(), `refused the login of user "unikfile-test"`) || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password: %v", err)
	}
	noURL := s.settings()
	noURL.URL = ""
	err = boot(map[string]string{}, noURL)
	if err == nil || !strings.Contains(err.Error(), "GOVC_URL") {
		t.Errorf("no URL: %v", err)
	}
	// GOVC_URL with userinfo, as govc takes it; a wrong datastore is named
	// with what there is.
	u := *s.url
	u.User = url.UserPassword(simUser, simPass)
	bad := noURL
	bad.Datastore = "fast-ssd"
	err = boot(map[string]string{envURL: u.String()}, bad)
	if err == nil || !strings.Contains(err.Error(), `datastore "fast-ssd" not found (there: LocalDS_0)`) || strings.Contains(err.Error(), simPass) {
		t.Errorf("GOVC_URL with a wrong datastore: %v", err)
	}
	s.nothingLeft()
}

// Attached: console lines go to the caller as the guest prints them, and
// the boot ends with the app's exit status; a cancelled attach stops and
// deletes the VM.
func TestAttachFollowsTheConsoleWithStandInGuest(t *testing.T) {
	s := newSim(t)
	g := s.standIn(func(string) []string { return bootLines("192.0.2.17") })
	ti := newTestImage(t, "api", "bios")
	p := s.provider()

	var out testenv.SyncBuffer
	spec := ti.spec(t, s.target(s.settings(), "api"), "api-attach")
	spec.Attach, spec.Console = true, &out
	ready := make(chan *state.Instance, 1)
	spec.Ready = func(inst *state.Instance) error { ready <- inst; return nil }
	type result struct {
		inst *state.Instance
		err  error
	}
	done := make(chan result, 1)
	go func() {
		inst, err := p.Boot(context.Background(), spec)
		done <- result{inst, err}
	}()
	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("Boot ended before ready: %v", r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	g.exit(vmPrefix+"api-attach", "bye", "unikfile-init: exit status 0")
	r := <-done
	if r.err != nil || r.inst.State != state.Exited || *r.inst.ExitStatus != 0 {
		t.Fatalf("attached boot: %+v, %v", r.inst, r.err)
	}
	if !strings.Contains(out.String(), "unikfile-init: ready\nbye\nunikfile-init: exit status 0\n") {
		t.Errorf("console: %q", out.String())
	}
	s.nothingLeft()

	// Ctrl-C while attached.
	spec = ti.spec(t, s.target(s.settings(), "api"), "api-attach2")
	spec.Attach, spec.Console = true, io.Discard
	ctx, cancel := context.WithCancel(context.Background())
	spec.Ready = func(*state.Instance) error { cancel(); return nil }
	inst, err := p.Boot(ctx, spec)
	if err != nil || inst.State != state.Stopped {
		t.Errorf("cancelled attach: %+v, %v", inst, err)
	}
	s.nothingLeft()
}

// A boot cancelled, or timed out, while it waits for the guest leaves
// nothing; the timeout says what the console showed.
func TestCancelAndTimeoutLeaveNothingWithStandInGuest(t *testing.T) {
	s := newSim(t)
	s.standIn(func(string) []string {
		return []string{"unikfile-init: address 192.0.2.18/24 via dhcp", "waiting for a database"}
	})
	ti := newTestImage(t, "api", "bios")
	p := s.provider()
	spec := ti.spec(t, s.target(s.settings(), "api"), "api-slow")
	spec.Timeout = 500 * time.Millisecond
	_, err := p.Boot(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "not ready after 500ms") || !strings.Contains(err.Error(), "waiting for a database") {
		t.Errorf("timeout: %v", err)
	}
	s.nothingLeft()

	spec = ti.spec(t, s.target(s.settings(), "api"), "api-cancel")
	ctx, cancel := context.WithCancel(context.Background())
	spec.Progress = func(msg string) {
		if strings.Contains(msg, "waiting for the guest") {
			cancel()
		}
	}
	if _, err := p.Boot(ctx, spec); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled boot: %v", err)
	}
	s.nothingLeft()
}

// A record whose booter died after creating the VM, before recording it
// (no config in the record, none of the VM's ID in the run directory's
// copy): Refresh reads the run directory, Stop finds the VM by its name.
func TestRecordOfADeadBooterIsCleanedUpWithStandInGuest(t *testing.T) {
	s := newSim(t)
	s.standIn(func(string) []string { return bootLines("192.0.2.19") })
	ti := newTestImage(t, "api", "bios")
	p := s.provider()
	spec := ti.spec(t, s.target(s.settings(), "api"), "api-orphan")
	booted, err := p.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, _ := ConfigOf(booted)
	cfg.VM = ""
	if err := cfg.save(spec.RunDir); err != nil {
		t.Fatal(err)
	}
	inst := &state.Instance{ID: booted.ID, Provider: Name, RunDir: spec.RunDir, State: state.Starting}
	if err := p.Refresh(context.Background(), inst); err != nil || inst.State != state.Starting || len(inst.Config) == 0 {
		t.Errorf("refresh: %s, config %s, %v", inst.State, inst.Config, err)
	}
	inst.Config = nil
	if err := p.Stop(context.Background(), inst); err != nil || inst.State != state.Stopped {
		t.Fatalf("stop: %s, %v", inst.State, err)
	}
	s.nothingLeft()
}

// The server's certificate is checked unless insecure is set.
func TestTLSCertificateCheckedUnlessInsecure(t *testing.T) {
	m := simulator.VPX()
	m.Machine = 0
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(simUser, simPass)}
	srv := m.Service.NewServer()
	defer func() { srv.Close(); m.Remove() }()
	u := *srv.URL
	u.User = nil
	env := func(k string) string { return map[string]string{envUsername: simUser, envPassword: simPass}[k] }
	e, err := endpointOf(&Settings{URL: u.String()}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(context.Background(), e); err == nil || !strings.Contains(err.Error(), "TLS certificate is not trusted") || !strings.Contains(err.Error(), "insecure = true") {
		t.Errorf("untrusted certificate: %v", err)
	}
	e.Insecure = true
	c, err := connect(context.Background(), e)
	if err != nil {
		t.Fatalf("insecure: %v", err)
	}
	closeClient(context.Background(), c)
	e, _ = endpointOf(&Settings{URL: u.String()}, func(k string) string {
		if k == envInsecure {
			return "1"
		}
		return env(k)
	})
	if !e.Insecure {
		t.Error("GOVC_INSECURE=1 does not skip the check")
	}
}

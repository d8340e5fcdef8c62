package vsphere

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/state"
)

// exitGrace is how long a guest that printed its exit status gets to
// power itself off before it is powered off.
const exitGrace = 10 * time.Second

// Boot puts the image on the datastore (once per digest), copies it into
// a VM folder of the instance's own, creates the VM there, powers it on
// and reads its serial console's file until the guest's init says it is
// ready. The app's address is the one the init printed (it got it by
// DHCP on the network).
//
// A failure at any step deletes what the boot created (the VM, its folder,
// a half-done upload) and the run directory; a completed image stays for
// the next boot. An app that exits before it is ready leaves the instance
// (State Exited) with its console kept in the run directory.
func (p *Provider) Boot(ctx context.Context, spec deploy.Spec) (*state.Instance, error) {
	app := spec.AppName()
	fail := func(err error) (*state.Instance, error) { return nil, fmt.Errorf("app %s: %w", app, err) }
	switch {
	case spec.Image == nil:
		return fail(errors.New("no image to boot"))
	case spec.Target == nil:
		return fail(errors.New("no target"))
	case spec.ID == "" || !filepath.IsAbs(spec.RunDir):
		return fail(errors.New("no instance ID or absolute run directory"))
	}
	s := SettingsOf(spec.Target)
	e, err := endpointOf(s, p.getenv)
	if err != nil {
		return fail(err)
	}
	img, err := openImage(spec.ImageDir, spec.Image)
	if err != nil {
		return fail(err)
	}
	c, err := connect(ctx, e)
	if err != nil {
		return fail(err)
	}
	defer closeClient(ctx, c)
	inv, err := resolve(ctx, c.Client, s)
	if err != nil {
		return fail(err)
	}
	vmName := vmPrefix + spec.ID
	cfg := &Config{
		URL: e.URL.String(), Insecure: e.Insecure,
		Datacenter: inv.dc.InventoryPath, Datastore: inv.ds.Name(), Network: path.Base(inv.net.GetInventoryPath()),
		ResourcePool: inv.pool.InventoryPath, Folder: inv.folder.InventoryPath, Host: s.Host,
		VMName: vmName, Dir: inv.ds.Path(vmName),
		Disk: inv.ds.Path(vmName + "/disk.vmdk"), Console: inv.ds.Path(vmName + "/console.log"),
		GuestID: guestID, Firmware: firmware(spec.Image.Boot), CPUs: max(s.CPUs, 1), MemoryMiB: memoryMiB(&spec, s),
		NIC: nicType, DiskBus: diskBus,
	}
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return fail(err)
	}
	// Before anything exists on vSphere: a record whose booter dies from
	// here on knows what to delete.
	if err := cfg.save(spec.RunDir); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return fail(err)
	}
	r := &recorded{c: c, cfg: cfg, dc: inv.dc, ds: inv.ds,
		console: dsFile{dc: inv.dc, ds: inv.ds, Path: vmName + "/console.log"},
		dir:     dsFile{dc: inv.dc, ds: inv.ds, Path: vmName}}
	b := &booting{p: p, spec: &spec, app: app, r: r}
	say := func(f string, args ...any) { spec.Say("%s: %s", app, fmt.Sprintf(f, args...)) }

	imageDisk, err := p.ensureImage(ctx, dsFile{dc: inv.dc, ds: inv.ds}, img, say)
	if err != nil {
		return b.abort(ctx, err)
	}
	cfg.Image = imageDisk.String()
	if err := r.dir.mkdir(ctx); err != nil {
		return b.abort(ctx, err)
	}
	if err := copyDisk(ctx, c.Client, inv.dc, cfg.Image, cfg.Disk); err != nil {
		return b.abort(ctx, fmt.Errorf("copy the image disk %s to %s: %w", cfg.Image, cfg.Disk, err))
	}
	note := fmt.Sprintf("unikfile instance %s: app %s of target %s in %s, image %.12s. Remove it with `unikfile down` there.",
		spec.ID, app, spec.Target.Name, spec.Project, spec.Image.Digest)
	vmSpec, err := vmSpec(ctx, cfg, inv, img.capacity, map[string]string{
		keyInstance: spec.ID, keyImage: spec.Image.Digest, keyProject: spec.Project,
	}, note)
	if err != nil {
		return b.abort(ctx, err)
	}
	say("creating VM %s in %s", vmName, cfg.Folder)
	vm, err := createVM(ctx, inv, vmSpec)
	if err != nil {
		return b.abort(ctx, fmt.Errorf("create VM %s: %w", vmName, err))
	}
	b.vm = vm
	cfg.VM = vm.Reference().Value
	raw, _ := json.Marshal(cfg)
	if err := cfg.save(spec.RunDir); err != nil {
		return b.abort(ctx, err)
	}
	b.inst = &state.Instance{
		ID: spec.ID, Project: spec.Project, Target: spec.Target.Name, App: app, Provider: Name,
		ImageDigest: spec.Image.Digest, ImageDir: spec.ImageDir, RunDir: spec.RunDir,
		State: state.Starting, Created: time.Now().UTC(), Config: raw,
	}
	if err := powerOn(ctx, vm); err != nil {
		return b.abort(ctx, fmt.Errorf("power on VM %s: %w", vmName, err))
	}
	say("VM %s is on; waiting for the guest on its console %s", vmName, cfg.Console)
	return b.run(ctx)
}

// memoryMiB is the settings' memory, else the image's, else the app's,
// rounded up to the 4 MiB vSphere requires.
func memoryMiB(spec *deploy.Spec, s *Settings) int {
	m := DefaultMemoryMiB
	switch {
	case s.MemoryMiB > 0:
		m = s.MemoryMiB
	case spec.Image.MemoryMiB > 0:
		m = spec.Image.MemoryMiB
	case spec.App != nil && spec.App.MemoryMiB > 0:
		m = spec.App.MemoryMiB
	}
	return (m + 3) / 4 * 4
}

// booting is one Boot in progress.
type booting struct {
	p    *Provider
	spec *deploy.Spec
	app  string
	r    *recorded
	vm   *object.VirtualMachine
	inst *state.Instance
	con  console.Scanner
	off  int64
	err  error // the last console read's error
}

// abort deletes what the boot created and returns err: whatever happened
// to ctx, nothing is left.
func (b *booting) abort(ctx context.Context, err error) (*state.Instance, error) {
	cctx := context.WithoutCancel(ctx)
	var errs []error
	if b.vm != nil {
		if derr := destroy(cctx, b.vm); derr != nil {
			errs = append(errs, fmt.Errorf("VM %s: %w", b.r.cfg.VMName, derr))
		}
	}
	if derr := b.r.dir.remove(cctx); derr != nil {
		errs = append(errs, derr)
	}
	_ = os.RemoveAll(b.spec.RunDir)
	if len(errs) > 0 {
		err = fmt.Errorf("%w\n(cleaning up also failed: %v; delete them with govc: vm.destroy %s, datastore.rm %s)",
			err, errors.Join(errs...), b.r.cfg.VMName, b.r.cfg.Dir)
	}
	return nil, fmt.Errorf("app %s: %w", b.app, err)
}

// poll reads what the console file gained.
func (b *booting) poll(ctx context.Context) {
	for {
		data, err := b.r.console.readFrom(ctx, b.off)
		switch {
		case errors.Is(err, errNoFile):
			return // the VM has not opened it yet
		case err != nil:
			b.err = err
			return
		}
		b.err = nil
		if len(data) == 0 {
			return
		}
		b.off += int64(len(data))
		_, _ = b.con.Write(data)
	}
}

func (b *booting) run(ctx context.Context) (*state.Instance, error) {
	if b.spec.Attach && b.spec.Console != nil {
		b.con.Out = b.spec.Console
	} else {
		b.con.OnError = func(msg string) { b.spec.Say("%s: guest %s", b.app, msg) }
	}
	timeout := b.spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(b.p.poll())
	defer tick.Stop()
	for {
		b.poll(ctx)
		if b.con.Exit() != nil {
			return b.exitedEarly(ctx)
		}
		if b.con.Ready() {
			break
		}
		if b.poweredOff(ctx) {
			b.poll(ctx)
			b.con.Flush()
			if b.con.Exit() != nil {
				return b.exitedEarly(ctx)
			}
			return b.abort(ctx, fmt.Errorf("VM %s powered off before the app was ready; last console lines:\n%s", b.r.cfg.VMName, b.con.Tail()))
		}
		select {
		case <-ctx.Done():
			return b.abort(ctx, ctx.Err())
		case <-timer.C:
			why := "the guest did not print that it was ready"
			if b.err != nil {
				why = fmt.Sprintf("its console %s could not be read (%v)", b.r.cfg.Console, b.err)
			}
			return b.abort(ctx, fmt.Errorf("not ready after %s: %s; last console lines:\n%s", timeout, why, b.con.Tail()))
		case <-tick.C:
		}
	}
	b.inst.State, b.inst.Started = state.Running, time.Now().UTC()
	b.inst.Ports = b.ports()
	if len(b.inst.Ports) == 0 && len(b.appPorts()) > 0 {
		b.spec.Say("%s: the guest printed no address line; `unikfile ps` cannot show where it answers", b.app)
	}
	if b.spec.Ready != nil {
		if err := b.spec.Ready(b.inst); err != nil {
			return b.inst, fmt.Errorf("app %s: %w", b.app, err)
		}
	}
	if !b.spec.Attach {
		return b.inst, nil
	}
	return b.follow(ctx)
}

func (b *booting) poweredOff(ctx context.Context) bool {
	st, err := powerState(ctx, b.vm)
	return err == nil && st == types.VirtualMachinePowerStatePoweredOff
}

// appPorts are the guest ports the app listens on.
func (b *booting) appPorts() []int {
	if len(b.spec.Image.Ports) > 0 {
		return b.spec.Image.Ports
	}
	if b.spec.App != nil {
		return b.spec.App.Ports
	}
	return nil
}

// ports are where the app answers: its ports at the address its guest
// printed.
func (b *booting) ports() []state.Port {
	addr := b.con.Address()
	if addr == "" {
		return nil
	}
	var out []state.Port
	for _, port := range b.appPorts() {
		out = append(out, state.Port{Bind: addr, Host: port, Guest: port})
	}
	return out
}

// exitedEarly: the app exited before it was ready. The guest powers off
// by itself; the console is kept in the run directory, the VM deleted.
func (b *booting) exitedEarly(ctx context.Context) (*state.Instance, error) {
	b.finish(ctx)
	b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
	return b.inst, fmt.Errorf("app %s exited with status %d before it was ready; last console lines:\n%s", b.app, *b.con.Exit(), b.con.Tail())
}

// finish waits briefly for a guest that printed its exit status to power
// off, reads the rest of its console and deletes the VM, keeping the
// console in the run directory.
func (b *booting) finish(ctx context.Context) {
	cctx := context.WithoutCancel(ctx)
	deadline := time.Now().Add(exitGrace)
	for time.Now().Before(deadline) && !b.poweredOff(cctx) {
		time.Sleep(b.p.poll())
	}
	b.poll(cctx)
	b.con.Flush()
	_, _ = b.p.teardown(cctx, b.r, b.spec.RunDir, false)
}

// follow copies the console (attached) until the app exits, the VM stops,
// or ctx ends, which stops the VM.
func (b *booting) follow(ctx context.Context) (*state.Instance, error) {
	tick := time.NewTicker(b.p.poll())
	defer tick.Stop()
	for {
		b.poll(ctx)
		if b.con.Exit() != nil {
			b.finish(ctx)
			b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
			return b.inst, nil
		}
		select {
		case <-ctx.Done():
			exit, err := b.p.teardown(context.WithoutCancel(ctx), b.r, b.spec.RunDir, true)
			b.inst.State = state.Stopped
			if exit != nil {
				b.inst.State, b.inst.ExitStatus = state.Exited, exit
			}
			return b.inst, err
		case <-tick.C:
		}
		if b.poweredOff(ctx) {
			b.poll(ctx)
			b.con.Flush()
			if b.con.Exit() != nil {
				continue
			}
			b.inst.State = state.Failed
			return b.inst, fmt.Errorf("app %s: VM %s powered off before the app exited (from outside, e.g. in vCenter); last console lines:\n%s",
				b.app, b.r.cfg.VMName, strings.TrimSpace(b.con.Tail()))
		}
	}
}

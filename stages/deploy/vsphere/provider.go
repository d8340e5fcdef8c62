package vsphere

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/state"
)

// Name is the provider's name in a target's `provider` attribute.
const Name = "vsphere"

// Defaults.
const (
	// DefaultTimeout bounds the wait for the guest's ready marker after
	// power-on (the upload before it is not counted).
	DefaultTimeout = 5 * time.Minute
	// DefaultPoll is how often a boot or `logs -f` reads the console file.
	DefaultPoll = time.Second
	// DefaultStopGrace is how long a guest shutdown may take before the VM
	// is powered off.
	DefaultStopGrace = 20 * time.Second
	// DefaultMemoryMiB is the guest memory when neither the settings, the
	// image nor the app say.
	DefaultMemoryMiB = 256
)

// consoleTail is how much of the console's end is read for the exit
// status, and kept in the run directory when the VM goes.
const (
	consoleTail = 64 << 10
	consoleKeep = 1 << 20
)

// Provider runs images as VMs on vSphere (vCenter or an ESXi host).
type Provider struct {
	// Getenv reads the environment (GOVC_*); nil means os.Getenv.
	Getenv func(string) string
	// Poll is how often the console is read; 0 means DefaultPoll.
	Poll time.Duration
	// StopGrace bounds a guest shutdown; 0 means DefaultStopGrace.
	StopGrace time.Duration
	// UploadAttempts is how often an upload is tried; 0 means 3.
	// RetryDelay is the wait before the second try (doubling after); 0
	// means 2 s.
	UploadAttempts int
	RetryDelay     time.Duration

	mu         sync.Mutex
	imageLocks map[string]chan struct{}
}

// New is the registry's constructor.
func New(deploy.Env) (deploy.Provider, error) { return &Provider{}, nil }

var _ deploy.Provider = (*Provider)(nil)

func (p *Provider) getenv(k string) string {
	if p.Getenv != nil {
		return p.Getenv(k)
	}
	return os.Getenv(k)
}

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return DefaultPoll
}

func (p *Provider) stopGrace() time.Duration {
	if p.StopGrace > 0 {
		return p.StopGrace
	}
	return DefaultStopGrace
}

func (p *Provider) attempts() int {
	if p.UploadAttempts > 0 {
		return p.UploadAttempts
	}
	return uploadAttempts
}

func (p *Provider) retryDelay() time.Duration {
	if p.RetryDelay > 0 {
		return p.RetryDelay
	}
	return 2 * time.Second
}

// recorded is a connection to a recorded instance's vSphere.
type recorded struct {
	c       *govmomi.Client
	cfg     *Config
	dc      *object.Datacenter
	ds      *object.Datastore
	console dsFile
	dir     dsFile
}

// open connects to the instance's vSphere, with credentials from the
// environment.
func (p *Provider) open(ctx context.Context, inst *state.Instance, cfg *Config) (*recorded, error) {
	e, err := endpointAt(cfg.URL, cfg.Insecure, p.getenv)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	c, err := connect(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	dc, ds, err := lookup(ctx, c.Client, cfg)
	if err != nil {
		closeClient(ctx, c)
		return nil, fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	r := &recorded{c: c, cfg: cfg, dc: dc, ds: ds}
	r.console = dsFile{dc: dc, ds: ds, Path: datastoreRel(cfg.Console)}
	r.dir = dsFile{dc: dc, ds: ds, Path: vmDirPath(cfg)}
	return r, nil
}

func (r *recorded) close(ctx context.Context) { closeClient(ctx, r.c) }

// datastoreRel is the path inside its datastore of "[ds] path".
func datastoreRel(p string) string {
	var dp object.DatastorePath
	if dp.FromString(p) {
		return dp.Path
	}
	return p
}

// Refresh sets inst.State from the VM and its console: exited with the
// status the guest printed; running (or starting: only the booter makes
// an instance running) while the VM is on; stopped or exited as recorded
// once unikfile stopped it; failed when the VM is off or gone (deleted
// behind unikfile's back) without an exit status.
func (p *Provider) Refresh(ctx context.Context, inst *state.Instance) error {
	cfg, ok, err := ConfigOf(inst)
	if err != nil || !ok {
		return err // no config: nothing was created yet
	}
	if len(inst.Config) == 0 {
		raw, _ := json.Marshal(cfg)
		inst.Config = raw
	}
	r, err := p.open(ctx, inst, cfg)
	if err != nil {
		return err
	}
	defer r.close(ctx)
	vm, err := findVM(ctx, r.c.Client, cfg)
	if err != nil {
		return fmt.Errorf("instance %s: find VM %s: %w", inst.ID, cfg.VMName, err)
	}
	if vm == nil {
		if inst.State != state.Stopped && inst.State != state.Exited {
			inst.State = state.Failed
		}
		return nil
	}
	st, err := powerState(ctx, vm)
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	tail, _ := r.console.tail(ctx, consoleTail)
	exit := console.LastExit(tail)
	switch {
	case exit != nil:
		inst.State, inst.ExitStatus = state.Exited, exit
	case st == types.VirtualMachinePowerStatePoweredOn:
		if inst.State != state.Running {
			inst.State = state.Starting
		}
	case inst.State == state.Stopped || inst.State == state.Exited:
	default:
		inst.State = state.Failed
	}
	return nil
}

// Stop shuts the VM down (a guest shutdown, which needs VMware Tools in
// the guest, then a hard power off), keeps the end of its console in the
// run directory, and deletes the VM and its folder on the datastore. The
// image stays for other instances. Stopping what is gone does nothing.
func (p *Provider) Stop(ctx context.Context, inst *state.Instance) error {
	cfg, ok, err := ConfigOf(inst)
	if err != nil {
		return err
	}
	if ok {
		if cfg.VMName != vmPrefix+inst.ID {
			return fmt.Errorf("instance %s: refusing to delete VM %q: not %s%s", inst.ID, cfg.VMName, vmPrefix, inst.ID)
		}
		r, err := p.open(ctx, inst, cfg)
		if err != nil {
			return err
		}
		defer r.close(ctx)
		exit, err := p.teardown(ctx, r, inst.RunDir, true)
		if err != nil {
			return fmt.Errorf("instance %s: %w", inst.ID, err)
		}
		if exit != nil {
			inst.State, inst.ExitStatus = state.Exited, exit
			return nil
		}
	}
	if inst.State != state.Exited {
		inst.State = state.Stopped
	}
	return nil
}

// teardown stops the VM (gracefully when graceful), saves its console into
// runDir, and deletes the VM and its folder. It returns the exit status
// the console shows.
func (p *Provider) teardown(ctx context.Context, r *recorded, runDir string, graceful bool) (*int, error) {
	vm, err := findVM(ctx, r.c.Client, r.cfg)
	if err != nil {
		return nil, fmt.Errorf("find VM %s: %w", r.cfg.VMName, err)
	}
	if vm != nil && graceful {
		if _, err := shutdown(ctx, vm, p.stopGrace(), p.poll()); err != nil {
			return nil, fmt.Errorf("stop VM %s: %w", r.cfg.VMName, err)
		}
	}
	var exit *int
	if tail, err := r.console.tail(ctx, consoleKeep); err == nil {
		exit = console.LastExit(tail)
		if runDir != "" {
			if _, err := os.Stat(runDir); err == nil {
				_ = atomicfile.WriteFile(filepath.Join(runDir, ConsoleCopy), tail, 0o600)
			}
		}
	}
	if vm != nil {
		if err := destroy(ctx, vm); err != nil {
			return exit, fmt.Errorf("VM %s: %w", r.cfg.VMName, err)
		}
	}
	if err := r.dir.remove(ctx); err != nil {
		return exit, err
	}
	return exit, nil
}

// Logs copies the serial console to w: the file on the datastore, read
// through the datastore's file service, or the copy Stop kept once the VM
// is gone. With follow it polls for more until the VM is off or gone (then
// drains the rest) or ctx ends.
func (p *Provider) Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error {
	out := console.StripCR{W: w}
	cfg, ok, err := ConfigOf(inst)
	if err != nil {
		return err
	}
	local := filepath.Join(inst.RunDir, ConsoleCopy)
	if !ok {
		return fmt.Errorf("instance %s: no console: its VM was never created", inst.ID)
	}
	if b, err := os.ReadFile(local); err == nil && !inst.Alive() {
		_, err := out.Write(b)
		return err
	}
	r, err := p.open(ctx, inst, cfg)
	if err != nil {
		return err
	}
	defer r.close(ctx)
	var off int64
	drain := func() error {
		for {
			b, err := r.console.readFrom(ctx, off)
			if err != nil || len(b) == 0 {
				return err
			}
			off += int64(len(b))
			if _, err := out.Write(b); err != nil {
				return err
			}
		}
	}
	if err := drain(); err != nil {
		if errors.Is(err, errNoFile) {
			if b, lerr := os.ReadFile(local); lerr == nil {
				_, err := out.Write(b)
				return err
			}
			if !follow {
				return fmt.Errorf("instance %s: no console on %s yet", inst.ID, r.console)
			}
		} else {
			return err
		}
	}
	if !follow {
		return nil
	}
	tick := time.NewTicker(p.poll())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		vm, err := findVM(ctx, r.c.Client, cfg)
		on := false
		if err == nil && vm != nil {
			st, err := powerState(ctx, vm)
			on = err == nil && st != types.VirtualMachinePowerStatePoweredOff
		}
		if err := drain(); err != nil && !errors.Is(err, errNoFile) {
			return err
		}
		if !on {
			return nil
		}
	}
}

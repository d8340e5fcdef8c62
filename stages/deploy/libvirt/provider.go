package libvirt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/state"
)

// Name is the provider's name in a target's `provider` attribute.
const Name = "libvirt"

// Files in an instance's run directory.
const (
	ConfigFile = "config.json"
	// ConsoleFile is the console, saved when the domain is removed: its
	// end, at most about twice Provider.ConsoleMax, in two generations
	// (deploy.RotatedConsole(ConsoleFile) is the older).
	ConsoleFile = "console.log"
)

// Default readiness timeouts: TCG boots several times slower.
const (
	DefaultTimeoutTCG = 180 * time.Second
	DefaultTimeoutKVM = 60 * time.Second
)

// DefaultMemoryMiB is the guest memory when neither image nor app says.
const DefaultMemoryMiB = 256

// stopGrace is how long a guest gets to power off after the ACPI power
// button (its init gives the app 10 s after SIGTERM).
const stopGrace = 15 * time.Second

// Provider boots images as libvirt domains.
type Provider struct {
	// Poll is how often a boot reads the console and the domain's state; 0
	// means 250 ms.
	Poll time.Duration
	// ConsoleMax is the size at which the copy of a console kept in the
	// run directory at removal is split into two generations (it keeps at
	// most about twice it); 0 or less means deploy.ConsoleMax().
	ConsoleMax int64

	stateDir string
	client   string
	vols     keyedMutex
	// failAfter, set by tests, fails a boot at a named step ("upload",
	// "define", "start") to show what is left behind.
	failAfter func(step string) error
}

var _ deploy.Provider = (*Provider)(nil)

// New is the registry's constructor.
func New(env deploy.Env) (deploy.Provider, error) { return NewProvider(env), nil }

// NewProvider returns the provider.
func NewProvider(env deploy.Env) *Provider {
	host, _ := os.Hostname()
	return &Provider{stateDir: env.StateDir, client: host + ":" + env.StateDir}
}

func (p *Provider) consoleMax() int64 {
	if p.ConsoleMax > 0 {
		return p.ConsoleMax
	}
	return deploy.ConsoleMax()
}

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return 250 * time.Millisecond
}

// Config is what an instance's record holds: where its domain and volumes
// are, and how it was booted.
type Config struct {
	URI    string `json:"uri"`
	Pool   string `json:"pool"`
	Domain string `json:"domain"`
	UUID   string `json:"uuid,omitempty"`
	// ImageVolumes are the shared volumes of the image; ConsoleVolume and
	// OverlayVolume the instance's own.
	ImageVolumes  []string `json:"image_volumes"`
	ConsoleVolume string   `json:"console_volume"`
	OverlayVolume string   `json:"overlay_volume,omitempty"`
	Machine       Machine  `json:"machine"`
	Metadata      Metadata `json:"metadata"`
	// Forwards are the host port forwards the domain has now (user-mode
	// networking), on the libvirt host.
	Forwards []lang.Forward `json:"forwards,omitempty"`
	// Address is the guest's own address, as its init or a DHCP lease
	// says (libvirt networks and bridges).
	Address string `json:"address,omitempty"`
	// PowerButton says whether the guest's init said, as it booted, that
	// it stops the app on the ACPI power button (nil: the record is older
	// than that, and the console's start is searched for the marker).
	PowerButton *bool `json:"power_button,omitempty"`
}

// names of an instance's libvirt objects.
func domainName(id string) string    { return "unikfile-" + id }
func consoleVolume(id string) string { return "unikfile-" + id + ".console.log" }
func overlayVolume(id string) string { return "unikfile-" + id + ".qcow2" }

// configOf is the instance's config: recorded, or written into its run
// directory before anything was created (a booter that died); ok is false
// when there is neither, and then nothing was created.
func configOf(inst *state.Instance) (Config, bool, error) {
	var c Config
	raw := []byte(inst.Config)
	if len(raw) == 0 {
		b, err := os.ReadFile(filepath.Join(inst.RunDir, ConfigFile))
		if err != nil {
			return c, false, nil
		}
		raw = b
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, false, fmt.Errorf("instance %s: libvirt config: %w", inst.ID, err)
	}
	return c, c.URI != "" && c.Domain != "", nil
}

func writeConfig(runDir string, c Config) error {
	return atomicfile.WriteJSON(filepath.Join(runDir, ConfigFile), c, 0o644)
}

// Refresh sets inst.State from libvirt: a running domain stays running (or
// starting: only the booter makes it running); a domain that is shut off
// or gone has exited with the status its console shows, or else failed
// (destroyed or crashed behind unikfile's back).
func (p *Provider) Refresh(ctx context.Context, inst *state.Instance) error {
	cfg, ok, err := configOf(inst)
	if err != nil {
		return err
	}
	if !ok {
		if inst.Alive() {
			inst.State = state.Failed
		}
		return nil
	}
	if len(inst.Config) == 0 {
		inst.Config, _ = json.Marshal(cfg)
	}
	c, err := connect(ctx, cfg.URI)
	if err != nil {
		return err
	}
	defer c.Close()
	active := false
	dom, err := c.DomainLookupByName(cfg.Domain)
	switch {
	case golibvirt.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("instance %s: domain %s: %w", inst.ID, cfg.Domain, err)
	default:
		st, _, err := c.DomainGetState(dom, 0)
		if err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("instance %s: domain %s: %w", inst.ID, cfg.Domain, err)
		}
		active = err == nil && golibvirt.DomainState(st) != golibvirt.DomainShutoff
	}
	if active {
		if inst.State != state.Running {
			inst.State = state.Starting
		}
		return nil
	}
	if exit := p.consoleExit(c, cfg, inst.RunDir); exit != nil {
		inst.State, inst.ExitStatus = state.Exited, exit
		return nil
	}
	if inst.State != state.Stopped && inst.State != state.Exited {
		inst.State = state.Failed
	}
	return nil
}

// exitTail is how much of the console's end consoleExit reads: the exit
// marker is among the guest's last lines.
const exitTail = 64 << 10

// consoleExit is the exit status in the console's tail (the volume and
// the generations virtlogd rotated out of it, or the copy saved in the run
// directory).
func (p *Provider) consoleExit(c *conn, cfg Config, runDir string) *int {
	if pl, err := openPool(c, cfg.Pool); err == nil {
		if b, ok, _ := pl.consoleTail(cfg.ConsoleVolume, exitTail); ok {
			return console.LastExit(b)
		}
	}
	return console.LastExit(deploy.ReadConsoleCopy(filepath.Join(runDir, ConsoleFile)))
}

// Stop stops the instance's domain (the ACPI power button first, when its
// init listens for it, then a hard stop), saves its console into the run
// directory, undefines it and deletes its volumes, and the image volumes
// no other domain uses. Stopping what is gone does nothing.
func (p *Provider) Stop(ctx context.Context, inst *state.Instance) error {
	cfg, ok, err := configOf(inst)
	if err != nil {
		return err
	}
	if !ok {
		if inst.State != state.Exited {
			inst.State = state.Stopped
		}
		return nil
	}
	// Whatever happens to ctx, a stop that began finishes.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*stopGrace+time.Minute)
	defer cancel()
	c, err := connect(sctx, cfg.URI)
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	defer c.Close()
	exit, err := p.removeDomain(sctx, c, cfg, inst.RunDir, true)
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	if exit != nil {
		inst.State, inst.ExitStatus = state.Exited, exit
	} else if inst.State != state.Exited {
		inst.State = state.Stopped
	}
	return nil
}

// removeDomain stops and undefines cfg's domain and deletes its volumes;
// graceful presses the power button first. It returns the exit status the
// console showed.
func (p *Provider) removeDomain(ctx context.Context, c *conn, cfg Config, runDir string, graceful bool) (*int, error) {
	pl, err := openPool(c, cfg.Pool)
	if err != nil {
		// A pool that is gone holds none of the instance's volumes; the
		// domain still goes.
		pl = nil
		if !strings.Contains(err.Error(), "has no storage pool") {
			return nil, err
		}
	}
	dom, err := c.DomainLookupByName(cfg.Domain)
	found := err == nil
	if err != nil && !golibvirt.IsNotFound(err) {
		return nil, fmt.Errorf("domain %s: %w", cfg.Domain, err)
	}
	if found {
		if graceful && domainActive(c, dom) && pl != nil && p.watchesPowerButton(pl, cfg) {
			if err := c.DomainShutdownFlags(dom, golibvirt.DomainShutdownAcpiPowerBtn); err == nil {
				deadline := time.Now().Add(stopGrace)
				for domainActive(c, dom) && time.Now().Before(deadline) && ctx.Err() == nil {
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
		if domainActive(c, dom) {
			if err := c.DomainDestroyFlags(dom, golibvirt.DomainDestroyDefault); err != nil && !golibvirt.IsNotFound(err) && domainActive(c, dom) {
				return nil, fmt.Errorf("destroy domain %s: %w", cfg.Domain, err)
			}
		}
	}
	var exit *int
	if pl == nil {
		if found {
			if err := c.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram|golibvirt.DomainUndefineManagedSave); err != nil && !golibvirt.IsNotFound(err) {
				return nil, fmt.Errorf("undefine domain %s: %w", cfg.Domain, err)
			}
		}
		return nil, nil
	}
	if runDir != "" {
		// The console's end, across virtlogd's generations.
		if b, ok, err := pl.consoleTail(cfg.ConsoleVolume, 2*uint64(p.consoleMax())); ok && err == nil {
			exit = console.LastExit(b)
			if _, err := os.Stat(runDir); err == nil {
				_ = p.keepConsole(runDir, b)
			}
		}
	}
	if found {
		err := c.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram|golibvirt.DomainUndefineManagedSave)
		if err != nil && !golibvirt.IsNotFound(err) {
			return exit, fmt.Errorf("undefine domain %s: %w", cfg.Domain, err)
		}
	}
	var errs []error
	if cfg.ConsoleVolume != "" {
		errs = append(errs, pl.removeConsole(cfg.ConsoleVolume))
		// Again: virtlogd may have rotated the console once more as it
		// wrote the last of the domain's output.
		errs = append(errs, pl.removeConsole(cfg.ConsoleVolume))
	}
	if cfg.OverlayVolume != "" {
		errs = append(errs, pl.remove(cfg.OverlayVolume))
	}
	errs = append(errs, p.gcImages(c, pl, cfg.ImageVolumes))
	return exit, errors.Join(errs...)
}

func domainActive(c *conn, dom golibvirt.Domain) bool {
	st, _, err := c.DomainGetState(dom, 0)
	return err == nil && golibvirt.DomainState(st) != golibvirt.DomainShutoff
}

// keepConsole saves b, the console's end, into the run directory: in two
// generations when it is longer than the console limit.
func (p *Provider) keepConsole(runDir string, b []byte) error {
	max := p.consoleMax()
	cc, err := deploy.CreateConsoleCopy(filepath.Join(runDir, ConsoleFile), max)
	if err != nil {
		return err
	}
	older := []byte(nil)
	if int64(len(b)) > max {
		// The newer generation begins with a line.
		cut := len(b) - int(max)
		if i := bytes.IndexByte(b[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		older, b = b[:cut], b[cut:]
	}
	_, err = cc.Write(older)
	if err == nil {
		_, err = cc.Write(b)
	}
	return errors.Join(err, cc.Close())
}

// watchesPowerButton says whether the guest's init said it stops the app on
// the ACPI power button: as the boot saw it, or, for a record that does not
// say, as the console's start shows (if virtlogd still has it).
func (p *Provider) watchesPowerButton(pl *pool, cfg Config) bool {
	if cfg.PowerButton != nil {
		return *cfg.PowerButton
	}
	b, _ := pl.consoleHead(cfg.ConsoleVolume, consoleHead)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimRight(l, "\r"), guest.PowerButtonMarker) {
			return true
		}
	}
	return false
}

// gcImages deletes the image volumes among names that no unikfile domain
// on the host uses any more.
func (p *Provider) gcImages(c *conn, pl *pool, names []string) error {
	if len(names) == 0 {
		return nil
	}
	unlock := p.vols.lock(lockKeys(c, pl, names)...)
	defer unlock()
	used, err := usedVolumes(c)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if !used[n] {
			errs = append(errs, pl.remove(n))
		}
	}
	return errors.Join(errs...)
}

// usedVolumes are the image volumes the unikfile domains on the host use.
func usedVolumes(c *conn) (map[string]bool, error) {
	doms, _, err := c.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	used := map[string]bool{}
	for _, d := range doms {
		x, err := c.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
		if err != nil {
			continue // gone meanwhile
		}
		if m, ok := parseMetadata(x); ok {
			for _, v := range m.Volumes {
				used[v] = true
			}
		}
	}
	return used, nil
}

func lockKeys(c *conn, pl *pool, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = c.raw + "|" + pl.name + "|" + n
	}
	return out
}

// Logs copies the serial console to w (without carriage returns). With
// follow it keeps reading until the domain is shut off or gone (then
// drains the rest) or ctx ends.
func (p *Provider) Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error {
	cfg, ok, err := configOf(inst)
	if err != nil {
		return err
	}
	out := console.StripCR{W: w}
	if !ok {
		return fmt.Errorf("instance %s: no console: its boot did not get as far as creating a domain", inst.ID)
	}
	// The copy saved at removal (console.log.1, then console.log).
	saved := filepath.Join(inst.RunDir, ConsoleFile)
	fromCopy := func(err error) error {
		r, rerr := deploy.OpenConsoleCopy(saved)
		if rerr != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(out, r)
		return err
	}
	c, err := connect(ctx, cfg.URI)
	if err != nil {
		return fromCopy(err)
	}
	defer c.Close()
	pl, err := openPool(c, cfg.Pool)
	if err != nil {
		return err
	}
	_, found, err := pl.lookup(cfg.ConsoleVolume)
	if err != nil {
		return err
	}
	noConsole := fmt.Errorf("instance %s: no console log (volume %s is gone from pool %s, and nothing was saved in %s)", inst.ID, cfg.ConsoleVolume, cfg.Pool, saved)
	if !found {
		return fromCopy(noConsole)
	}
	// Every generation virtlogd kept, then what comes, across rotations.
	cr := &consoleReader{pl: pl, name: cfg.ConsoleVolume}
	gone := false
	var readErr error // the last read's
	readMore := func() error {
		b, err := cr.next()
		readErr = nil
		if errors.Is(err, errConsoleGone) {
			gone = true // removed
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			readErr = fmt.Errorf("instance %s: console: %w", inst.ID, err)
			return readErr
		}
		_, err = out.Write(b)
		return err
	}
	if err := readMore(); err != nil {
		return err
	}
	if gone {
		return fromCopy(noConsole) // removed meanwhile
	}
	if !follow {
		return nil
	}
	tick := time.NewTicker(p.poll())
	defer tick.Stop()
	failed := 0 // polls in a row that failed
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		dom, err := c.DomainLookupByName(cfg.Domain)
		alive := err == nil && domainActive(c, dom)
		err = readMore()
		switch {
		case err != nil && err == readErr && alive && failed < followRetries:
			failed++ // a pool busy for a refresh, say: the next poll tries again
			continue
		case err != nil || gone || !alive:
			return err
		}
		failed = 0
	}
}

// followRetries is how many polls in a row logs -f lets fail before it
// gives up.
const followRetries = 20

package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/api/option"

	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/state"
)

// Name is the provider's name in a target's `provider` attribute.
const Name = "gcp"

// Defaults of the provider.
const (
	// DefaultTimeout bounds the wait for readiness: GCE takes tens of
	// seconds to provision and start an instance.
	DefaultTimeout = 5 * time.Minute
	DefaultPoll    = 2 * time.Second
	DefaultBackoff = time.Second
	// DefaultChunkSize is the resumable upload's chunk.
	DefaultChunkSize = 8 << 20
	// cleanupTimeout bounds removing what a failed boot made.
	cleanupTimeout = 10 * time.Minute
)

// Files in an instance's run directory.
const (
	ConfigFile  = "config.json"
	ConsoleFile = "console.log"
)

// Provider runs images as Compute Engine instances.
type Provider struct {
	// ComputeOptions and StorageOptions are added to the API clients'
	// options, after the endpoints of EnvComputeEndpoint and
	// EnvStorageEndpoint.
	ComputeOptions, StorageOptions []option.ClientOption
	// Poll is how often the serial console and images are polled; 0 means
	// DefaultPoll.
	Poll time.Duration
	// Backoff is the first wait before retrying a failed call; 0 means
	// DefaultBackoff.
	Backoff time.Duration
	// ChunkSize is the resumable upload's chunk size; 0 means
	// DefaultChunkSize.
	ChunkSize int
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Host names this machine in the labels of what it creates; "" means
	// os.Hostname.
	Host string
	// ConsoleMax is the size at which the local copy of a console is
	// rotated; 0 means deploy.ConsoleMax(), less than 0 never.
	ConsoleMax int64

	mu  sync.Mutex
	svc *services
}

var _ deploy.Provider = (*Provider)(nil)

// New is the registry's constructor.
func New(deploy.Env) (deploy.Provider, error) { return &Provider{}, nil }

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return DefaultPoll
}

func (p *Provider) backoff() time.Duration {
	if p.Backoff > 0 {
		return p.Backoff
	}
	return DefaultBackoff
}

func (p *Provider) chunkSize() int {
	if p.ChunkSize > 0 {
		return p.ChunkSize
	}
	return DefaultChunkSize
}

func (p *Provider) consoleMax() int64 {
	if p.ConsoleMax != 0 {
		return p.ConsoleMax
	}
	return deploy.ConsoleMax()
}

func (p *Provider) host() string {
	if p.Host != "" {
		return p.Host
	}
	h, _ := os.Hostname()
	return h
}

// Config is what an instance was made of, stored in its record and its
// run directory: the names of everything unikfile created for it.
type Config struct {
	Project     string `json:"project"`
	Zone        string `json:"zone"`
	Instance    string `json:"instance"`
	MachineType string `json:"machine_type"`
	Network     string `json:"network"`
	// Firewall is the rule letting Ingress reach the ports (also the
	// instance's network tag); "" when nobody may.
	Firewall string   `json:"firewall,omitempty"`
	Ingress  []string `json:"ingress,omitempty"`
	Ports    []int    `json:"ports,omitempty"`
	// Image is the image the instance boots; Bucket and Object where its
	// archive is staged while it is imported.
	Image  string `json:"image"`
	Bucket string `json:"bucket"`
	Object string `json:"object"`
	// Addresses of the instance, once it has them.
	ExternalIP string `json:"external_ip,omitempty"`
	InternalIP string `json:"internal_ip,omitempty"`
	// Console is the local copy of the serial console.
	Console string            `json:"console"`
	Labels  map[string]string `json:"labels"`
}

// configOf is the instance's config: from its record, else from its run
// directory (the command that booted it died before recording it), in
// which case the record gets it too. ok is false when there is none: the
// boot created nothing in GCP.
func configOf(inst *state.Instance) (Config, bool, error) {
	var c Config
	raw := []byte(inst.Config)
	if len(raw) == 0 {
		b, err := os.ReadFile(filepath.Join(inst.RunDir, ConfigFile))
		if errors.Is(err, os.ErrNotExist) || inst.RunDir == "" {
			return c, false, nil
		}
		if err != nil {
			return c, false, fmt.Errorf("instance %s: %w", inst.ID, err)
		}
		raw = b
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, false, fmt.Errorf("instance %s: gcp config: %w", inst.ID, err)
	}
	if len(inst.Config) == 0 {
		inst.Config, inst.Ports = raw, c.statePorts()
	}
	return c, c.Project != "" && c.Instance != "", nil
}

// statePorts are the app's ports at the instance's address: the external
// one, else the internal one.
func (c Config) statePorts() []state.Port {
	addr := c.ExternalIP
	if addr == "" {
		addr = c.InternalIP
	}
	if addr == "" {
		return nil
	}
	out := make([]state.Port, 0, len(c.Ports))
	for _, n := range c.Ports {
		out = append(out, state.Port{Bind: addr, Host: n, Guest: n})
	}
	return out
}

// Refresh sets inst.State from the instance in GCE: starting or running
// while it runs (only the command that booted it calls it running),
// exited with the status its console printed once it stopped, failed when
// it is gone without unikfile stopping it.
func (p *Provider) Refresh(ctx context.Context, inst *state.Instance) error {
	cfg, ok, err := configOf(inst)
	if err != nil {
		return err
	}
	if !ok {
		if inst.Alive() && inst.State != state.Starting {
			inst.State = state.Failed
		}
		return nil
	}
	svc, err := p.clients(ctx)
	if err != nil {
		return err
	}
	gi, err := p.getInstance(ctx, svc, cfg)
	switch {
	case isNotFound(err):
		if inst.State != state.Stopped && inst.State != state.Exited {
			inst.State = state.Failed
		}
		return nil
	case err != nil:
		return err
	}
	switch gi.Status {
	case "PROVISIONING", "STAGING", "RUNNING", "REPAIRING":
		if inst.State != state.Running {
			inst.State = state.Starting
		}
	default: // STOPPING, TERMINATED, SUSPENDING, SUSPENDED
		if exit := p.exitStatus(ctx, svc, cfg); exit != nil {
			inst.State, inst.ExitStatus = state.Exited, exit
		} else if inst.State != state.Stopped && inst.State != state.Exited {
			inst.State = state.Failed
		}
	}
	return nil
}

// exitStatus is the status the app's console printed: from GCE's copy of
// the serial console, else from the local one.
func (p *Provider) exitStatus(ctx context.Context, svc *services, cfg Config) *int {
	r := &serialReader{p: p, svc: svc.compute, cfg: cfg}
	if b, err := r.read(ctx); err == nil {
		if st := console.LastExit(b); st != nil {
			return st
		}
	}
	return console.LastExit(deploy.ReadConsoleCopy(cfg.Console))
}

// Stop deletes the instance, its firewall rule, the staged archive if it
// is still there, and its image unless another instance uses it. It is
// idempotent: what is gone already is skipped.
func (p *Provider) Stop(ctx context.Context, inst *state.Instance) error {
	cfg, ok, err := configOf(inst)
	if err != nil {
		return err
	}
	if ok {
		svc, err := p.clients(ctx)
		if err != nil {
			return err
		}
		if err := p.teardown(ctx, svc, cfg, true); err != nil {
			return fmt.Errorf("instance %s: %w", inst.ID, err)
		}
	}
	if exit := console.LastExit(deploy.ReadConsoleCopy(cfg.Console)); exit != nil {
		inst.State, inst.ExitStatus = state.Exited, exit
	} else if inst.State != state.Exited {
		inst.State = state.Stopped
	}
	return nil
}

// teardown deletes what cfg names, each step whatever the others do; with
// image it also deletes the image when no other instance uses it.
func (p *Provider) teardown(ctx context.Context, svc *services, cfg Config, image bool) error {
	var errs []error
	if err := p.deleteInstance(ctx, svc, cfg); err != nil {
		errs = append(errs, err)
	}
	if cfg.Firewall != "" {
		if err := p.deleteFirewall(ctx, svc, cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.deleteStaged(ctx, svc, cfg); err != nil {
		errs = append(errs, err)
	}
	if image && len(errs) == 0 {
		if _, err := p.deleteImageIfUnused(ctx, svc, cfg, cfg.Instance); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Logs copies the serial console to w: GCE's copy while the instance
// exists (following it with follow until the instance stops or ctx
// ends), else the local copy this host kept while it booted.
func (p *Provider) Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error {
	cfg, ok, err := configOf(inst)
	if err != nil {
		return err
	}
	out := console.StripCR{W: w}
	local := func() error {
		f, err := deploy.OpenConsoleCopy(cfg.Console)
		if err != nil {
			return fmt.Errorf("instance %s: no console: the instance is gone from GCE and this host kept no copy (%v)", inst.ID, err)
		}
		defer f.Close()
		_, err = io.Copy(out, f)
		return err
	}
	if !ok {
		return local()
	}
	svc, err := p.clients(ctx)
	if err != nil {
		return err
	}
	r := &serialReader{p: p, svc: svc.compute, cfg: cfg}
	b, err := r.read(ctx)
	if isNotFound(err) {
		return local()
	}
	if err != nil {
		return err
	}
	if _, err := out.Write(b); err != nil || !follow {
		return err
	}
	tick := time.NewTicker(p.poll())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		gi, err := p.getInstance(ctx, svc, cfg)
		gone := isNotFound(err) || err == nil && !running(gi.Status)
		if err != nil && !gone {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		b, err := r.read(ctx)
		if err != nil && !isNotFound(err) {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
		if gone {
			return nil
		}
	}
}

func running(status string) bool {
	switch status {
	case "PROVISIONING", "STAGING", "RUNNING", "REPAIRING":
		return true
	}
	return false
}

// resource paths for errors.
func (c Config) instancePath() string {
	return "projects/" + c.Project + "/zones/" + c.Zone + "/instances/" + c.Instance
}

func (c Config) imagePath() string { return "projects/" + c.Project + "/global/images/" + c.Image }

func (c Config) firewallPath() string {
	return "projects/" + c.Project + "/global/firewalls/" + c.Firewall
}

func (c Config) networkPath() string {
	if strings.Contains(c.Network, "/") {
		return c.Network
	}
	return "projects/" + c.Project + "/global/networks/" + c.Network
}

package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/stages/package/format"
	"github.com/unikfile/unikfile/state"
)

// Boot makes the image (unless it exists), the firewall rule and the
// instance, and returns once the guest's console says the app is ready.
// Everything it made is labelled, and recorded in the run directory
// before it is made. When it fails it removes what it made, in reverse
// order; if that fails too, it returns the instance in state Failed, so
// that `unikfile down` (or the next `up`) removes the rest.
func (p *Provider) Boot(ctx context.Context, spec deploy.Spec) (*state.Instance, error) {
	app := spec.AppName()
	s, err := checkSpec(&spec)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	project, err := p.resolveProject(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	svc, err := p.clients(ctx)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	b := &booting{p: p, spec: &spec, s: s, svc: svc, app: app}
	b.cfg = b.config(project)
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	if err := atomicfile.WriteJSON(filepath.Join(spec.RunDir, ConfigFile), b.cfg, 0o644); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	f, err := deploy.CreateConsoleCopy(b.cfg.Console, p.consoleMax())
	if err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	defer f.Close()
	b.con = &console.Scanner{}
	if spec.Attach && spec.Console != nil {
		b.con.Out = spec.Console
	} else {
		b.con.OnError = func(msg string) { spec.Say("%s: guest %s", app, msg) }
	}
	b.log = f
	b.inst = &state.Instance{
		ID: spec.ID, Project: spec.Project, Target: spec.Target.Name, App: app, Provider: Name,
		ImageDigest: spec.Image.Digest, ImageDir: spec.ImageDir, RunDir: spec.RunDir,
		State: state.Starting, Created: time.Now().UTC(),
	}
	b.record()
	inst, err := b.run(ctx)
	if err != nil {
		return b.fail(ctx, inst, fmt.Errorf("app %s: %w", app, err))
	}
	return inst, nil
}

// checkSpec rejects what this provider cannot boot and returns the
// target's settings.
func checkSpec(spec *deploy.Spec) (*Settings, error) {
	s := SettingsOf(spec.Target)
	switch {
	case spec.Image == nil:
		return nil, errors.New("no image to boot")
	case s == nil:
		return nil, errors.New("the target has no gcp settings")
	case spec.Image.Format != format.GCE || spec.Image.Disk == "":
		return nil, fmt.Errorf("GCE boots images in format %q, and this one is %q; set format = %q in the target (the default)", format.GCE, spec.Image.Format, format.GCE)
	case spec.ID == "" || !filepath.IsAbs(spec.RunDir):
		return nil, errors.New("no instance ID or absolute run directory")
	}
	if !filepath.IsAbs(spec.ImageDir) {
		abs, err := filepath.Abs(spec.ImageDir)
		if err != nil {
			return nil, err
		}
		spec.ImageDir = abs
	}
	if _, err := os.Stat(filepath.Join(spec.ImageDir, spec.Image.Disk)); err != nil {
		return nil, fmt.Errorf("image file: %w; rebuild the image", err)
	}
	return s, nil
}

// booting is one Boot in progress.
type booting struct {
	p    *Provider
	spec *deploy.Spec
	s    *Settings
	svc  *services
	app  string
	cfg  Config
	inst *state.Instance
	con  *console.Scanner
	log  *deploy.ConsoleCopy // the local copy of the console
	// serial reads the console; follow goes on where waitReady stopped.
	serial *serialReader
	// undos remove what this boot made, last first.
	undos []undo
}

type undo struct {
	what string
	f    func(ctx context.Context) error
}

func (b *booting) undo(what string, f func(ctx context.Context) error) {
	b.undos = append(b.undos, undo{what, f})
}

// config names everything the instance is made of.
func (b *booting) config(project string) Config {
	spec, s := b.spec, b.s
	name := instanceName(spec.ID)
	img := imageName(spec.Image.Digest)
	c := Config{
		Project: project, Zone: s.Zone, Instance: name, MachineType: s.MachineType, Network: s.Network,
		Ports: append([]int(nil), spec.Image.Ports...), Image: img, Bucket: s.Bucket, Object: objectName(img),
		Console: filepath.Join(spec.RunDir, ConsoleFile),
		Labels: map[string]string{
			labelManaged:  managedValue,
			labelInstance: labelValue(spec.ID),
			labelProject:  projectKey(b.p.host(), spec.Project),
			labelTarget:   labelValue(spec.Target.Name),
			labelApp:      labelValue(b.app),
			labelImage:    img,
		},
	}
	if len(c.Ports) == 0 && spec.App != nil {
		c.Ports = append(c.Ports, spec.App.Ports...)
	}
	if len(s.Ingress) > 0 && len(c.Ports) > 0 {
		c.Firewall, c.Ingress = name, append([]string(nil), s.Ingress...)
	}
	return c
}

// record keeps the config in the instance and the run directory.
func (b *booting) record() {
	_ = atomicfile.WriteJSON(filepath.Join(b.spec.RunDir, ConfigFile), b.cfg, 0o644)
	raw, _ := json.Marshal(b.cfg)
	b.inst.Config, b.inst.Ports = raw, b.cfg.statePorts()
}

func (b *booting) run(ctx context.Context) (*state.Instance, error) {
	if err := b.checkMachineType(ctx); err != nil {
		return nil, err
	}
	if err := b.ensureImage(ctx); err != nil {
		return nil, err
	}
	if b.cfg.Firewall != "" {
		if err := b.insertFirewall(ctx); err != nil {
			return nil, err
		}
	} else if len(b.cfg.Ports) > 0 {
		b.spec.Say("%s: warning: nobody can reach port %s: the target's gcp block has no ingress; open it with ingress = [\"0.0.0.0/0\"] (everyone) or your own ranges (e.g. [\"203.0.113.0/24\"])",
			b.app, joinPorts(b.cfg.Ports))
	}
	b.spec.Say("%s: creating instance %s (%s in %s)", b.app, b.cfg.Instance, b.cfg.MachineType, b.cfg.Zone)
	err := b.insertInstance(ctx)
	if isNotFound(err) && strings.Contains(err.Error(), b.cfg.Image) {
		// The image went between finding it and booting it (the last
		// instance of another project that used it was removed): make it
		// again.
		b.spec.Say("%s: image %s was deleted meanwhile; making it again", b.app, b.cfg.Image)
		if err = b.ensureImage(ctx); err == nil {
			err = b.insertInstance(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	gi, err := b.p.getInstance(ctx, b.svc, b.cfg)
	if err != nil {
		return nil, err
	}
	b.cfg.ExternalIP, b.cfg.InternalIP = addresses(gi)
	b.record()
	if inst, err := b.waitReady(ctx); inst != nil || err != nil {
		return inst, err
	}
	b.inst.State, b.inst.Started = state.Running, time.Now().UTC()
	b.removeOrphans(ctx)
	if b.spec.Ready != nil {
		if err := b.spec.Ready(b.inst); err != nil {
			// It serves; what failed is recording it or stopping the old.
			return b.inst, fmt.Errorf("app %s: %w", b.app, err)
		}
	}
	if !b.spec.Attach {
		return b.inst, nil
	}
	return b.follow(ctx)
}

// checkMachineType checks that the machine type exists in the zone and
// has the memory the image needs.
func (b *booting) checkMachineType(ctx context.Context) error {
	cfg := b.cfg
	var mt *compute.MachineType
	err := retry(ctx, b.p.backoff(), func() (err error) {
		mt, err = b.svc.compute.MachineTypes.Get(cfg.Project, cfg.Zone, cfg.MachineType).Context(ctx).Do()
		return err
	})
	if isNotFound(err) {
		return fmt.Errorf("machine type %s does not exist in zone %s of project %s (or the zone does not); see gcloud compute machine-types list --zones %s",
			cfg.MachineType, cfg.Zone, cfg.Project, cfg.Zone)
	}
	if err != nil {
		return apiError(op{what: "look up machine type " + cfg.MachineType, perm: "compute.machineTypes.get",
			resource: "projects/" + cfg.Project + "/zones/" + cfg.Zone}, err)
	}
	if need := int64(b.spec.Image.MemoryMiB); need > 0 && mt.MemoryMb < need {
		return fmt.Errorf("app %s needs %d MiB of memory and machine type %s has %d MiB; set a larger machine_type in the gcp block", b.app, need, cfg.MachineType, mt.MemoryMb)
	}
	return nil
}

// waitReady reads the serial console until the ready marker, and returns
// (nil, nil) then; otherwise what Boot returns.
func (b *booting) waitReady(ctx context.Context) (*state.Instance, error) {
	timeout := b.spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	r := &serialReader{p: b.p, svc: b.svc.compute, cfg: b.cfg}
	b.serial = r
	for i := 0; ; i++ {
		data, err := r.read(ctx)
		if err != nil {
			return nil, err
		}
		b.feed(data)
		if b.con.Exit() != nil {
			b.con.Flush()
			b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
			return b.inst, fmt.Errorf("app %s exited with status %d before it was ready; last console lines:\n%s", b.app, *b.con.Exit(), b.con.Tail())
		}
		if b.con.Ready() {
			return nil, nil
		}
		if len(data) == 0 || i%5 == 4 {
			gi, err := b.p.getInstance(ctx, b.svc, b.cfg)
			if err != nil {
				return nil, err
			}
			if !running(gi.Status) {
				rest, _ := r.read(ctx)
				b.feed(rest)
				b.con.Flush()
				if b.con.Exit() != nil {
					continue
				}
				return nil, fmt.Errorf("instance %s stopped (status %s) before the app was ready; last console lines:\n%s", b.cfg.Instance, gi.Status, b.con.Tail())
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, fmt.Errorf("app %s was not ready after %s: the guest did not print that it was ready; last console lines:\n%s", b.app, timeout, b.con.Tail())
		case <-time.After(b.p.poll()):
		}
	}
}

// feed passes console bytes to the scanner and the local copy.
func (b *booting) feed(data []byte) {
	if len(data) == 0 {
		return
	}
	_, _ = b.log.Write(data)
	_, _ = b.con.Write(data)
}

// follow copies the console until the app exits or ctx ends, which stops
// the instance.
func (b *booting) follow(ctx context.Context) (*state.Instance, error) {
	r := b.serial
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if err := b.p.Stop(sctx, b.inst); err != nil {
				b.inst.State = state.Failed
				return b.inst, fmt.Errorf("app %s: %w", b.app, err)
			}
			return b.inst, nil
		case <-time.After(b.p.poll()):
		}
		data, err := r.read(ctx)
		if err != nil && ctx.Err() == nil {
			return b.inst, err
		}
		b.feed(data)
		if b.con.Exit() != nil {
			b.con.Flush()
			b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
			return b.inst, nil
		}
		gi, err := b.p.getInstance(ctx, b.svc, b.cfg)
		if isNotFound(err) || err == nil && !running(gi.Status) {
			rest, _ := r.read(ctx)
			b.feed(rest)
			b.con.Flush()
			if b.con.Exit() != nil {
				b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
				return b.inst, nil
			}
			b.inst.State = state.Failed
			return b.inst, fmt.Errorf("app %s: the instance stopped before the app exited (it was stopped or deleted from outside, e.g. by `unikfile down`); last console lines:\n%s", b.app, b.con.Tail())
		}
	}
}

// removeOrphans deletes the instances of this app that unikfile has no
// record of, once this one serves.
func (b *booting) removeOrphans(ctx context.Context) {
	keep := []string{b.cfg.Instance}
	for _, old := range b.spec.Replaces {
		if c, ok, _ := configOf(old); ok {
			keep = append(keep, c.Instance)
		} else {
			keep = append(keep, instanceName(old.ID))
		}
	}
	orphans, err := b.p.orphans(ctx, b.svc, b.cfg, keep)
	if err != nil {
		b.spec.Say("%s: warning: %v", b.app, err)
		return
	}
	for _, gi := range orphans {
		c := b.cfg
		c.Instance, c.Image = gi.Name, gi.Labels[labelImage]
		c.Firewall = ""
		for _, t := range tagsOf(gi) {
			if t == gi.Name {
				c.Firewall = t
			}
		}
		c.Bucket, c.Object = "", ""
		if err := b.p.teardown(context.WithoutCancel(ctx), b.svc, c, true); err != nil {
			b.spec.Say("%s: warning: removing instance %s, which unikfile has no record of: %v", b.app, gi.Name, err)
			continue
		}
		b.spec.Say("%s: removed instance %s, an instance of this app that unikfile had no record of", b.app, gi.Name)
	}
}

func tagsOf(gi *compute.Instance) []string {
	if gi.Tags == nil {
		return nil
	}
	return gi.Tags.Items
}

// fail removes what the boot made and returns what Boot returns: inst (an
// app that exited before it was ready) with its run directory kept for
// `unikfile logs`, or nil with the run directory removed; or, when the
// removal fails, the instance in state Failed, so that its record lets
// `unikfile down` finish the job.
func (b *booting) fail(ctx context.Context, inst *state.Instance, err error) (*state.Instance, error) {
	if inst != nil && inst.State == state.Running {
		// Ready, and only recording it failed: it serves.
		return inst, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var left []string
	var errs []error
	for i := len(b.undos) - 1; i >= 0; i-- {
		u := b.undos[i]
		if uerr := u.f(cctx); uerr != nil {
			left = append(left, u.what)
			errs = append(errs, uerr)
		}
	}
	if len(left) > 0 {
		b.inst.State = state.Failed
		if inst != nil && inst.State == state.Exited {
			b.inst.State, b.inst.ExitStatus = state.Exited, inst.ExitStatus
		}
		return b.inst, fmt.Errorf("%w\nremoving what this boot made failed too (left: %s): %v; `unikfile down` tries again", err, strings.Join(left, ", "), errors.Join(errs...))
	}
	if inst != nil {
		return inst, err
	}
	_ = b.log.Close()
	_ = os.RemoveAll(b.spec.RunDir)
	return nil, err
}

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

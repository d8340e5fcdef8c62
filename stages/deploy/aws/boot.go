package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/stages/package/format"
	"github.com/unikfile/unikfile/state"
)

// Boot makes (or reuses) the image's AMI, the app's security group and an
// instance, and waits until the instance's console says the app is ready.
// On failure it removes what it created; an app that exited before it was
// ready is returned as exited, its console kept in the run directory.
func (p *Provider) Boot(ctx context.Context, spec deploy.Spec) (*state.Instance, error) {
	app := spec.AppName()
	if err := checkSpec(&spec); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	s := SettingsOf(spec.Target)
	c, err := p.clientsFor(ctx, s.Region)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	b := &booting{p: p, c: c, spec: &spec, s: s, app: app, rec: &Record{
		Region: c.region, InstanceType: s.InstanceType, Ingress: s.Ingress, Ports: appPorts(&spec),
	}}
	// The region is journaled before anything is created, so that a kill
	// at any later moment leaves a record Stop can clean up from.
	if err := b.save(); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	inst, err := b.run(ctx)
	if err != nil && inst == nil {
		if uerr := b.undo(ctx); uerr != nil {
			err = fmt.Errorf("%w\nand removing what this boot created failed: %v", err, uerr)
		}
		_ = os.RemoveAll(spec.RunDir)
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	if err != nil {
		return inst, fmt.Errorf("app %s: %w", app, err)
	}
	return inst, nil
}

func checkSpec(spec *deploy.Spec) error {
	switch {
	case spec.Image == nil:
		return errors.New("no image to boot")
	case spec.Target == nil:
		return errors.New("no target")
	case spec.ID == "" || spec.RunDir == "":
		return errors.New("no instance ID or run directory")
	case !filepath.IsAbs(spec.RunDir):
		return fmt.Errorf("run directory %q is not absolute", spec.RunDir)
	case spec.Image.Format != format.Raw || spec.Image.Disk == "":
		return fmt.Errorf("the aws provider boots raw disks, and this image is %q; set format = \"raw\" in the target (or leave format out)", spec.Image.Format)
	}
	if _, err := os.Stat(filepath.Join(spec.ImageDir, spec.Image.Disk)); err != nil {
		return fmt.Errorf("image file: %w; rebuild the image", err)
	}
	return nil
}

// appPorts are the ports the guest listens on: the image's, else the app's.
func appPorts(spec *deploy.Spec) []int {
	if spec.Image != nil && len(spec.Image.Ports) > 0 {
		return slices.Clone(spec.Image.Ports)
	}
	if spec.App != nil {
		return slices.Clone(spec.App.Ports)
	}
	return nil
}

// ProjectTag is the value of TagProject for a project directory.
func ProjectTag(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:8])
}

// booting is one Boot in progress.
type booting struct {
	p    *Provider
	c    *clients
	spec *deploy.Spec
	s    *Settings
	app  string
	rec  *Record
	con  console.Scanner
	read consoleReader
}

func (b *booting) save() error { return journal(b.spec.RunDir, b.rec) }

func (b *booting) created(id string) error {
	b.rec.Created = append(b.rec.Created, id)
	return b.save()
}

// tags are what every resource of this boot carries.
func (b *booting) tags() map[string]string {
	return map[string]string{
		TagManaged: "true", TagProject: ProjectTag(b.spec.Project), TagTarget: b.spec.Target.Name, TagApp: b.app,
		TagInstance: b.spec.ID, "Name": fmt.Sprintf("unikfile %s (%s)", b.app, b.spec.Target.Name),
	}
}

func (b *booting) run(ctx context.Context) (*state.Instance, error) {
	ami, err := b.image(ctx)
	if err != nil {
		return nil, err
	}
	subnet, vpc, err := subnetOf(ctx, b.c, b.s.Subnet)
	if err != nil {
		return nil, err
	}
	b.rec.Subnet, b.rec.VPC = subnet, vpc
	if err := b.group(ctx, vpc); err != nil {
		return nil, err
	}
	tags := b.tags()
	tags[TagDigest] = b.spec.Image.Digest
	id, err := launch(ctx, b.c, ami, b.s.InstanceType, subnet, b.rec.GroupID, clientToken(b.spec.ID), tags)
	if err != nil {
		return nil, err
	}
	b.rec.InstanceID = id
	if err := b.save(); err != nil {
		return nil, err
	}
	b.spec.Say("%s: launched %s (%s) in %s, region %s; waiting for its console to say the app is ready", b.app, id, b.s.InstanceType, subnet, b.c.region)
	return b.wait(ctx)
}

// clientToken is RunInstances' idempotency token for an instance ID (at
// most 64 ASCII characters).
func clientToken(id string) string {
	if len(id) <= 64 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// image returns the AMI of the image's digest: an existing one of unikfile
// (waiting for it if it is still pending), or one made now.
func (b *booting) image(ctx context.Context) (string, error) {
	img := b.spec.Image
	ims, err := imagesOf(ctx, b.c, img.Digest)
	if err != nil {
		return "", err
	}
	for _, im := range ims {
		id := awssdk.ToString(im.ImageId)
		switch im.State {
		case ec2types.ImageStateAvailable:
			b.rec.ImageID, b.rec.SnapshotID = id, rootSnapshot(im)
			b.spec.Say("%s: image %.12s is AMI %s already", b.app, img.Digest, id)
			return id, b.save()
		case ec2types.ImageStatePending:
			b.spec.Say("%s: waiting for AMI %s, which another boot is registering", b.app, id)
			if err := waitImage(ctx, b.c, id, b.p.poll()); err != nil {
				return "", err
			}
			b.rec.ImageID, b.rec.SnapshotID = id, rootSnapshot(im)
			return id, b.save()
		default:
			// A failed AMI of the digest serves nobody, and its name is in
			// the way of a new one.
			if err := removeImage(ctx, b.c, im); err != nil {
				return "", err
			}
		}
	}
	return b.makeImage(ctx)
}

// makeImage uploads the disk into a snapshot and registers it.
func (b *booting) makeImage(ctx context.Context) (string, error) {
	img := b.spec.Image
	path := filepath.Join(b.spec.ImageDir, img.Disk)
	tags := b.tags()
	tags[TagDigest] = img.Digest
	conc := b.p.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	start := time.Now()
	b.spec.Say("%s: uploading image %.12s to an EBS snapshot in %s", b.app, img.Digest, b.c.region)
	up, err := upload(ctx, b.c, Upload{
		Path: path, Tags: tags, Token: clientToken(b.spec.ID + "-snapshot"), Concurrency: conc, Poll: b.p.poll(),
		Description: fmt.Sprintf("unikfile image %s of app %s", img.Digest, b.app),
		Started: func(id string) error {
			b.rec.SnapshotID = id
			return b.created(id)
		},
	})
	if err != nil {
		return "", err
	}
	b.spec.Say("%s: snapshot %s completed: %d of %d blocks hold data and were written (%s)", b.app, up.SnapshotID, up.Written, up.Blocks, time.Since(start).Round(time.Millisecond))
	id, err := register(ctx, b.c, img, up.SnapshotID, up.VolumeGiB, tags)
	if code(err) == "InvalidAMIName.Duplicate" {
		// Another boot registered the digest meanwhile: use its AMI, and
		// drop this boot's snapshot.
		var ims []ec2types.Image
		var ierr error
		w := waiter{max: b.p.poll()}
		for start := time.Now(); ierr == nil && len(ims) == 0 && time.Since(start) < notFoundGrace; {
			if ims, ierr = imagesOf(ctx, b.c, img.Digest); ierr == nil && len(ims) == 0 {
				ierr = w.sleep(ctx)
			}
		}
		if ierr != nil || len(ims) == 0 {
			return "", errors.Join(err, ierr)
		}
		other := awssdk.ToString(ims[0].ImageId)
		if err := waitImage(ctx, b.c, other, b.p.poll()); err != nil {
			return "", err
		}
		if err := deleteSnapshot(ctx, b.c, up.SnapshotID); err != nil {
			return "", err
		}
		b.rec.Created = slices.DeleteFunc(b.rec.Created, func(s string) bool { return s == up.SnapshotID })
		b.rec.ImageID, b.rec.SnapshotID = other, rootSnapshot(ims[0])
		return other, b.save()
	}
	if err != nil {
		return "", err
	}
	b.rec.ImageID = id
	if err := b.created(id); err != nil {
		return "", err
	}
	if err := waitImage(ctx, b.c, id, b.p.poll()); err != nil {
		return "", err
	}
	b.spec.Say("%s: registered AMI %s (%s boot, ENA)", b.app, id, bootMode(img))
	return id, nil
}

// group makes sure the app's security group exists with exactly its ports.
func (b *booting) group(ctx context.Context, vpc string) error {
	tags := b.tags()
	delete(tags, TagInstance) // the group outlives one instance
	name := fmt.Sprintf("unikfile-%s-%s-%s", tags[TagProject], b.spec.Target.Name, b.app)
	ports := b.rec.Ports
	id, created, err := ensureGroup(ctx, b.c, vpc, name, tags, ports, b.s.Ingress, b.p.poll())
	if id != "" {
		b.rec.GroupID = id
		if created {
			if serr := b.created(id); serr != nil && err == nil {
				err = serr
			}
		}
	}
	if err != nil {
		return err
	}
	if len(ports) > 0 && len(b.s.Ingress) == 0 {
		list := make([]string, len(ports))
		for i, p := range ports {
			list[i] = fmt.Sprint(p)
		}
		b.spec.Say("%s: warning: port %s is closed to everyone (security group %s has no ingress); to open it, set ingress in the target's aws block, e.g. aws { ingress = [\"0.0.0.0/0\"] } for everyone or [\"203.0.113.7/32\"] for one address", b.app, strings.Join(list, ", "), id)
	}
	return nil
}

// wait polls the instance and its console until the app is ready, exits,
// the instance ends, or the timeout.
func (b *booting) wait(ctx context.Context) (*state.Instance, error) {
	timeout := b.spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	if b.spec.Attach && b.spec.Console != nil {
		b.con.Out = b.spec.Console
	} else {
		b.con.OnError = func(msg string) { b.spec.Say("%s: guest %s", b.app, msg) }
	}
	id := b.rec.InstanceID
	launched := time.Now()
	w := waiter{max: b.p.poll()}
	for {
		in, ok, err := describe(ctx, b.c, id)
		if err != nil {
			return nil, err
		}
		st := stateOf(in)
		if !ok {
			if time.Since(launched) > notFoundGrace {
				return nil, fmt.Errorf("aws: instance %s disappeared while booting", id)
			}
			st = ec2types.InstanceStateNamePending // EC2 does not know it yet
		}
		if st != ec2types.InstanceStateNamePending {
			if err := b.readConsole(ctx); err != nil {
				return nil, err
			}
		}
		switch {
		case b.con.Exit() != nil:
			return b.exitedEarly(ctx)
		case st == ec2types.InstanceStateNameRunning && b.con.Ready():
			return b.ready(ctx, in)
		case st != ec2types.InstanceStateNamePending && st != ec2types.InstanceStateNameRunning:
			return nil, fmt.Errorf("aws: instance %s is %s before the app was ready (%s)\nlast console lines:\n%s", id, st, reasonOf(in), b.con.Tail())
		case time.Now().After(deadline):
			why := "its console never said the app was ready"
			if st == ec2types.InstanceStateNamePending {
				why = "it was still pending"
			}
			return nil, fmt.Errorf("aws: instance %s was not ready after %s: %s (set a longer --timeout if it is only slow)\nlast console lines:\n%s", id, timeout, why, b.con.Tail())
		}
		if err := w.sleep(ctx); err != nil {
			return nil, err
		}
	}
}

func (b *booting) readConsole(ctx context.Context) error {
	out, err := consoleOutput(ctx, b.c, b.rec.InstanceID)
	if err != nil {
		return err
	}
	if delta := b.read.next(out); delta != "" {
		_, _ = b.con.Write([]byte(delta))
	}
	return nil
}

// ready records the instance's address and hands it to the reconciler.
func (b *booting) ready(ctx context.Context, in ec2types.Instance) (*state.Instance, error) {
	b.rec.PrivateIP = awssdk.ToString(in.PrivateIpAddress)
	b.rec.Address = awssdk.ToString(in.PublicIpAddress)
	if b.rec.Address == "" {
		b.rec.Address = b.rec.PrivateIP
	}
	if err := b.save(); err != nil {
		return nil, err
	}
	inst := b.instance()
	inst.State, inst.Started = state.Running, time.Now().UTC()
	if b.spec.Ready != nil {
		if err := b.spec.Ready(inst); err != nil {
			return inst, err
		}
	}
	if !b.spec.Attach {
		return inst, nil
	}
	return b.follow(ctx, inst)
}

func (b *booting) instance() *state.Instance {
	raw, _ := json.Marshal(b.rec)
	inst := &state.Instance{
		ID: b.spec.ID, Project: b.spec.Project, Target: b.spec.Target.Name, App: b.app, Provider: Name,
		ImageDigest: b.spec.Image.Digest, ImageDir: b.spec.ImageDir, RunDir: b.spec.RunDir,
		State: state.Starting, Created: time.Now().UTC(), Config: raw,
	}
	for _, p := range b.rec.Ports {
		if b.rec.Address != "" {
			inst.Ports = append(inst.Ports, state.Port{Bind: b.rec.Address, Host: p, Guest: p})
		}
	}
	return inst
}

// follow copies the console to the attached writer until the app exits or
// ctx ends (which terminates the instance).
func (b *booting) follow(ctx context.Context, inst *state.Instance) (*state.Instance, error) {
	for {
		if err := sleep(ctx, b.p.poll()); err != nil {
			stopCtx := context.WithoutCancel(ctx)
			if serr := b.p.Stop(stopCtx, inst); serr != nil {
				return inst, serr
			}
			return inst, nil
		}
		if err := b.readConsole(ctx); err != nil && ctx.Err() == nil {
			return inst, err
		}
		if ex := b.con.Exit(); ex != nil {
			inst.State, inst.ExitStatus = state.Exited, ex
			return inst, nil
		}
	}
}

// exitedEarly handles an exit marker before readiness: the console is kept
// in the run directory, the instance and what this boot made go, and the
// instance is returned as exited.
func (b *booting) exitedEarly(ctx context.Context) (*state.Instance, error) {
	b.con.Flush()
	_ = atomicfile.WriteFile(filepath.Join(b.spec.RunDir, ConsoleFile), []byte(b.read.seen), 0o600)
	err := b.undo(ctx)
	b.rec.Terminated = true
	b.rec.Created = nil
	_ = b.save()
	inst := b.instance()
	inst.State, inst.ExitStatus = state.Exited, b.con.Exit()
	msg := fmt.Errorf("exited with status %d before it was ready; last console lines:\n%s", *b.con.Exit(), b.con.Tail())
	if err != nil {
		msg = fmt.Errorf("%w\nand removing what this boot created failed: %v", msg, err)
	}
	return inst, msg
}

// undo removes what this boot created, newest first: the instance (waiting
// until it is terminated), the security group, the AMI, the snapshot.
func (b *booting) undo(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if b.rec.InstanceID != "" {
		if err := terminate(ctx, b.c, b.rec.InstanceID, b.p.poll(), true); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(b.rec.Created) - 1; i >= 0; i-- {
		id := b.rec.Created[i]
		var err error
		switch {
		case strings.HasPrefix(id, "sg-"):
			err = deleteGroupIfUnused(ctx, b.c, id, b.p.poll())
		case strings.HasPrefix(id, "ami-"):
			err = deregister(ctx, b.c, id)
		case strings.HasPrefix(id, "snap-"):
			err = deleteSnapshot(ctx, b.c, id)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

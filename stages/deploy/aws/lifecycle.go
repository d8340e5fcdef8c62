package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/unikfile/unikfile/stages/deploy/console"
	"github.com/unikfile/unikfile/state"
)

// Refresh sets inst.State from its EC2 instance: a pending or running one
// keeps its state (only the booter makes an instance running); a stopped
// one exited with the status its console printed, else failed; a
// terminated or missing one failed, unless unikfile stopped it. A record
// whose booter died before recording it gets the journal as its config.
func (p *Provider) Refresh(ctx context.Context, inst *state.Instance) error {
	rec, ok, err := recordOf(inst)
	if err != nil || !ok {
		return err
	}
	if len(inst.Config) == 0 {
		raw, _ := json.Marshal(rec)
		inst.Config = raw
	}
	if rec.Terminated {
		return nil
	}
	c, err := p.clientsFor(ctx, rec.Region)
	if err != nil {
		return err
	}
	in, found, err := p.find(ctx, c, inst, rec)
	if err != nil {
		return err
	}
	if !found {
		if rec.InstanceID != "" && inst.State == state.Running {
			inst.State = state.Failed
		}
		// Not launched yet, or just launched and not known to EC2 yet: a
		// boot in progress (or one that died, which the next up removes).
		return nil
	}
	switch stateOf(in) {
	case ec2types.InstanceStateNamePending, ec2types.InstanceStateNameRunning:
		if inst.State != state.Running {
			inst.State = state.Starting
		}
	case ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
		out, err := consoleOutput(ctx, c, awssdk.ToString(in.InstanceId))
		if err != nil {
			return err
		}
		if ex := console.LastExit([]byte(out)); ex != nil {
			inst.State, inst.ExitStatus = state.Exited, ex
		} else if inst.State != state.Stopped && inst.State != state.Exited {
			inst.State = state.Failed
		}
	default:
		if inst.State != state.Stopped && inst.State != state.Exited {
			inst.State = state.Failed
		}
	}
	return nil
}

// find returns the EC2 instance of inst: the recorded one, else the one
// tagged with its ID.
func (p *Provider) find(ctx context.Context, c *clients, inst *state.Instance, rec *Record) (ec2types.Instance, bool, error) {
	if rec.InstanceID != "" {
		return describe(ctx, c, rec.InstanceID)
	}
	list, err := instancesTagged(ctx, c, managedFilter(TagInstance, inst.ID))
	if err != nil || len(list) == 0 {
		return ec2types.Instance{}, false, err
	}
	return list[0], true, nil
}

// Stop terminates the instance and then removes what unikfile made for it
// and nothing uses any more: the AMIs of its image digest and their
// snapshots, the snapshots its boot started, the app's security group. It
// finds them by their tags, so it also cleans up after a boot that died.
// Stopping again does nothing.
func (p *Provider) Stop(ctx context.Context, inst *state.Instance) error {
	rec, ok, err := recordOf(inst)
	if err != nil {
		return err
	}
	if !ok {
		// The boot died before it journaled its region: it created nothing.
		if inst.State != state.Exited {
			inst.State = state.Stopped
		}
		return nil
	}
	c, err := p.clientsFor(ctx, rec.Region)
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	var errs []error
	ids := map[string]bool{}
	if rec.InstanceID != "" && !rec.Terminated {
		ids[rec.InstanceID] = true
	}
	tagged, err := instancesTagged(ctx, c, managedFilter(TagInstance, inst.ID))
	if err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	for _, in := range tagged {
		ids[awssdk.ToString(in.InstanceId)] = true
	}
	for id := range ids {
		if inst.State != state.Exited {
			if out, err := consoleOutput(ctx, c, id); err == nil {
				if ex := console.LastExit([]byte(out)); ex != nil {
					inst.State, inst.ExitStatus = state.Exited, ex
				}
			}
		}
		if err := terminate(ctx, c, id, p.poll(), false); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// What the instance used cannot go while it is there.
		return fmt.Errorf("instance %s: %w", inst.ID, errors.Join(errs...))
	}
	if err := p.cleanup(ctx, c, inst, rec); err != nil {
		return fmt.Errorf("instance %s: %w", inst.ID, err)
	}
	if inst.State != state.Exited {
		inst.State = state.Stopped
	}
	return nil
}

// cleanup removes what inst's boots made that nothing uses any more.
func (p *Provider) cleanup(ctx context.Context, c *clients, inst *state.Instance, rec *Record) error {
	var errs []error
	// The app's security group, once no instance is in it.
	groups := map[string]bool{}
	if rec.GroupID != "" {
		groups[rec.GroupID] = true
	}
	g, found, err := findGroup(ctx, c, "", map[string]string{TagProject: ProjectTag(inst.Project), TagTarget: inst.Target, TagApp: inst.App})
	if err != nil {
		errs = append(errs, err)
	} else if found {
		groups[awssdk.ToString(g.GroupId)] = true
	}
	for id := range groups {
		if err := deleteGroupIfUnused(ctx, c, id, p.poll()); err != nil {
			errs = append(errs, err)
		}
	}
	// The AMIs of the digest nothing runs any more, with their snapshots.
	if inst.ImageDigest != "" {
		ims, err := imagesOf(ctx, c, inst.ImageDigest)
		if err != nil {
			errs = append(errs, err)
		}
		for _, im := range ims {
			if err := removeImage(ctx, c, im); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// What the journal says this instance's boot created, by ID: EC2's
	// listings by tag may not show what was made a moment ago (a boot
	// killed just after it started its snapshot).
	for _, id := range rec.Created {
		if !strings.HasPrefix(id, "ami-") {
			continue
		}
		used, err := inUse(ctx, c, "image-id", id)
		if err == nil && !used {
			_, err = c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(id)})
			if cd := code(err); cd == "InvalidAMIID.NotFound" || cd == "InvalidAMIID.Unavailable" {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, explain(c.region, err))
		}
	}
	for _, id := range rec.Created {
		if !strings.HasPrefix(id, "snap-") {
			continue
		}
		if err := deleteSnapshot(ctx, c, id); err != nil && code(err) != "InvalidSnapshot.InUse" {
			errs = append(errs, err)
		}
	}
	// Snapshots this instance's boot started that no AMI holds (an upload
	// that died or failed).
	out, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{managedFilter(TagManaged, "true"), managedFilter(TagInstance, inst.ID)},
	})
	if err != nil {
		errs = append(errs, explain(c.region, err))
	} else {
		for _, sn := range out.Snapshots {
			err := deleteSnapshot(ctx, c, awssdk.ToString(sn.SnapshotId))
			if err != nil && code(err) != "InvalidSnapshot.InUse" {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// inUse says whether an instance that is not terminated uses resource
// (filter is image-id or instance.group-id).
func inUse(ctx context.Context, c *clients, filter, id string) (bool, error) {
	list, err := instancesTagged(ctx, c, ec2types.Filter{Name: awssdk.String(filter), Values: []string{id}})
	return len(list) > 0, err
}

// removeImage deregisters an AMI of unikfile that no instance uses and
// deletes its root snapshot.
func removeImage(ctx context.Context, c *clients, im ec2types.Image) error {
	id := awssdk.ToString(im.ImageId)
	if tagValue(im.Tags, TagManaged) != "true" {
		return nil
	}
	used, err := inUse(ctx, c, "image-id", id)
	if err != nil || used {
		return err
	}
	_, err = c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: awssdk.String(id)})
	if err != nil && code(err) != "InvalidAMIID.NotFound" && code(err) != "InvalidAMIID.Unavailable" {
		return explain(c.region, err)
	}
	if snap := rootSnapshot(im); snap != "" {
		return deleteSnapshot(ctx, c, snap)
	}
	return nil
}

// deregister removes AMI id (see removeImage); gone already is fine.
func deregister(ctx context.Context, c *clients, id string) error {
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, Owners: []string{"self"}})
	if code(err) == "InvalidAMIID.NotFound" {
		return nil
	}
	if err != nil {
		return explain(c.region, err)
	}
	for _, im := range out.Images {
		if err := removeImage(ctx, c, im); err != nil {
			return err
		}
	}
	return nil
}

// deleteSnapshot deletes snapshot id; gone already is fine.
func deleteSnapshot(ctx context.Context, c *clients, id string) error {
	_, err := c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: awssdk.String(id)})
	if err == nil || code(err) == "InvalidSnapshot.NotFound" {
		return nil
	}
	return explain(c.region, err)
}

// deleteGroupIfUnused deletes security group id unless an instance is in
// it. AWS may refuse for a while after the last instance terminated (its
// network interface goes last): that is retried.
func deleteGroupIfUnused(ctx context.Context, c *clients, id string, poll time.Duration) error {
	used, err := inUse(ctx, c, "instance.group-id", id)
	if err != nil || used {
		return err
	}
	deadline := time.Now().Add(cleanupTimeout)
	w := waiter{max: poll}
	for {
		_, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: awssdk.String(id)})
		switch {
		case err == nil || code(err) == "InvalidGroup.NotFound":
			return nil
		case code(err) != "DependencyViolation" || time.Now().After(deadline):
			return explain(c.region, err)
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}

// Logs copies the instance's console (GetConsoleOutput: the latest 64 KiB
// EC2 keeps) to w; with follow it polls for more until the instance is no
// longer running or ctx ends. An instance unikfile terminated shows the
// console kept in its run directory.
func (p *Provider) Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error {
	out := console.StripCR{W: w}
	rec, ok, err := recordOf(inst)
	if err != nil {
		return err
	}
	kept := filepath.Join(inst.RunDir, ConsoleFile)
	if rec.Terminated || !ok || rec.InstanceID == "" {
		b, err := os.ReadFile(kept)
		if err != nil {
			return fmt.Errorf("instance %s: no console yet (its instance has not been launched)", inst.ID)
		}
		_, err = out.Write(b)
		return err
	}
	c, err := p.clientsFor(ctx, rec.Region)
	if err != nil {
		return err
	}
	var r consoleReader
	for {
		text, err := consoleOutput(ctx, c, rec.InstanceID)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("instance %s: %w", inst.ID, err)
		}
		if _, err := io.WriteString(out, r.next(text)); err != nil || !follow {
			return err
		}
		in, found, err := describe(ctx, c, rec.InstanceID)
		if err != nil {
			return err
		}
		if st := stateOf(in); !found || (st != ec2types.InstanceStateNamePending && st != ec2types.InstanceStateNameRunning) {
			text, err := consoleOutput(ctx, c, rec.InstanceID)
			if err == nil {
				_, err = io.WriteString(out, r.next(text))
			}
			return err
		}
		if err := sleep(ctx, p.poll()); err != nil {
			return nil
		}
	}
}

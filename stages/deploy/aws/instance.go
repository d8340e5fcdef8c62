package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// launch runs one instance of AMI image. token makes the call idempotent:
// a retry with the same token is the same launch.
func launch(ctx context.Context, c *clients, image, itype, subnet, group, token string, tags map[string]string) (string, error) {
	ni := ec2types.InstanceNetworkInterfaceSpecification{
		DeviceIndex: awssdk.Int32(0),
		SubnetId:    awssdk.String(subnet),
		Groups:      []string{group},
		// AssociatePublicIpAddress is left to the subnet: a public address
		// where the subnet gives them (default subnets do).
		DeleteOnTermination: awssdk.Bool(true),
	}
	out, err := c.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:           awssdk.String(image),
		InstanceType:      ec2types.InstanceType(itype),
		MinCount:          awssdk.Int32(1),
		MaxCount:          awssdk.Int32(1),
		ClientToken:       awssdk.String(token),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{ni},
		MetadataOptions:   &ec2types.InstanceMetadataOptionsRequest{HttpTokens: ec2types.HttpTokensStateRequired},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags(tags)},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: ec2Tags(tags)},
		},
	})
	if err != nil {
		return "", explain(c.region, err)
	}
	if len(out.Instances) != 1 {
		return "", fmt.Errorf("aws: RunInstances launched %d instances, not 1", len(out.Instances))
	}
	return awssdk.ToString(out.Instances[0].InstanceId), nil
}

// describe reads one instance; ok is false when AWS does not know it.
func describe(ctx context.Context, c *clients, id string) (ec2types.Instance, bool, error) {
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if code(err) == "InvalidInstanceID.NotFound" {
		return ec2types.Instance{}, false, nil
	}
	if err != nil {
		return ec2types.Instance{}, false, explain(c.region, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			return in, true, nil
		}
	}
	return ec2types.Instance{}, false, nil
}

// instancesTagged lists the instances, not terminated, whose tag key is
// value.
func instancesTagged(ctx context.Context, c *clients, filters ...ec2types.Filter) ([]ec2types.Instance, error) {
	filters = append(filters, ec2types.Filter{Name: awssdk.String("instance-state-name"),
		Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}})
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: filters})
	if err != nil {
		return nil, explain(c.region, err)
	}
	var list []ec2types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list, nil
}

func stateOf(in ec2types.Instance) ec2types.InstanceStateName {
	if in.State == nil {
		return ""
	}
	return in.State.Name
}

func reasonOf(in ec2types.Instance) string {
	if in.StateReason != nil && in.StateReason.Message != nil {
		return awssdk.ToString(in.StateReason.Message)
	}
	return awssdk.ToString(in.StateTransitionReason)
}

// consoleOutput reads the instance's console (the latest 64 KiB EC2 keeps).
func consoleOutput(ctx context.Context, c *clients, id string) (string, error) {
	out, err := c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: awssdk.String(id), Latest: awssdk.Bool(true)})
	if code(err) == "UnsupportedOperation" {
		// Instances off the Nitro system have only the buffered output.
		out, err = c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: awssdk.String(id)})
	}
	if err != nil {
		return "", explain(c.region, err)
	}
	b, err := base64.StdEncoding.DecodeString(awssdk.ToString(out.Output))
	if err != nil {
		return "", fmt.Errorf("aws: GetConsoleOutput of %s: %w", id, err)
	}
	return string(b), nil
}

// terminate terminates instance id (gone already is fine) and waits until
// it is terminated, so that what it used can be deleted.
// recent says the instance was just launched, so that EC2 may not know it
// yet: NotFound is then retried for a while instead of meaning "gone".
func terminate(ctx context.Context, c *clients, id string, poll time.Duration, recent bool) error {
	if in, ok, err := describe(ctx, c, id); err != nil {
		return err
	} else if ok && stateOf(in) == ec2types.InstanceStateNameTerminated || !ok && !recent {
		return nil
	}
	w, start := waiter{max: poll}, time.Now()
	for {
		_, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		if err == nil {
			break
		}
		if code(err) != "InvalidInstanceID.NotFound" {
			return explain(c.region, err)
		}
		if !recent || time.Since(start) > notFoundGrace {
			return nil
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(cleanupTimeout)
	w = waiter{max: poll}
	for {
		in, ok, err := describe(ctx, c, id)
		if err != nil {
			return err
		}
		if ok && stateOf(in) == ec2types.InstanceStateNameTerminated || !ok && (!recent || time.Since(start) > notFoundGrace) {
			return nil
		}
		if ok && time.Now().After(deadline) {
			return fmt.Errorf("aws: instance %s was still %s %s after TerminateInstances; check it in the EC2 console", id, stateOf(in), cleanupTimeout)
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}

// consoleReader turns successive GetConsoleOutput answers (each the whole
// latest window) into the bytes that are new since the last one.
type consoleReader struct{ seen string }

// next returns what out adds to what was seen.
func (r *consoleReader) next(out string) string {
	if out == "" {
		return ""
	}
	if strings.HasPrefix(out, r.seen) {
		delta := out[len(r.seen):]
		r.seen = out
		return delta
	}
	// The window moved on: continue after the last part of what was seen.
	tail := r.seen
	if len(tail) > 4096 {
		tail = tail[len(tail)-4096:]
	}
	r.seen = out
	if i := strings.LastIndex(out, tail); i >= 0 && tail != "" {
		return out[i+len(tail):]
	}
	return out
}

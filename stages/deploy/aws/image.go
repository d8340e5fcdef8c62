package aws

import (
	"context"
	"fmt"
	"sort"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Tag keys of what unikfile creates.
const (
	TagManaged  = "unikfile:managed" // "true" on everything unikfile made
	TagDigest   = "unikfile:digest"  // the image digest an AMI or snapshot holds
	TagProject  = "unikfile:project" // a digest of the project's directory
	TagTarget   = "unikfile:target"
	TagApp      = "unikfile:app"
	TagInstance = "unikfile:instance" // the unikfile instance ID whose boot made it
)

// RootDevice is the AMIs' root device.
const RootDevice = "/dev/xvda"

// amiName is the AMI name of an image digest: unique per account and
// region, so two boots registering one digest cannot both succeed.
func amiName(digest string) string { return "unikfile-" + digest }

// bootMode is the EC2 boot mode of an image.
func bootMode(img *pack.Image) ec2types.BootModeValues {
	if img.Boot == pack.BootUEFI {
		return ec2types.BootModeValuesUefi
	}
	return ec2types.BootModeValuesLegacyBios
}

func managedFilter(key, value string) ec2types.Filter {
	return ec2types.Filter{Name: awssdk.String("tag:" + key), Values: []string{value}}
}

// imagesOf lists unikfile's AMIs of a digest (any state but deregistered).
func imagesOf(ctx context.Context, c *clients, digest string) ([]ec2types.Image, error) {
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{managedFilter(TagManaged, "true"), managedFilter(TagDigest, digest)},
	})
	if err != nil {
		return nil, explain(c.region, err)
	}
	return out.Images, nil
}

// waitImage waits for AMI id to be available; failed fails at once.
func waitImage(ctx context.Context, c *clients, id string, poll time.Duration) error {
	w := waiter{max: poll}
	start := time.Now()
	for {
		out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}, Owners: []string{"self"}})
		if code(err) == "InvalidAMIID.NotFound" || err == nil && len(out.Images) == 0 {
			if time.Since(start) < notFoundGrace {
				if err := w.sleep(ctx); err != nil {
					return err
				}
				continue // EC2 does not know it yet
			}
			return fmt.Errorf("aws: AMI %s is gone", id)
		}
		if err != nil {
			return explain(c.region, err)
		}
		im := out.Images[0]
		switch im.State {
		case ec2types.ImageStateAvailable:
			return nil
		case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered:
			why := ""
			if im.StateReason != nil {
				why = ": " + awssdk.ToString(im.StateReason.Message)
			}
			return fmt.Errorf("aws: AMI %s ended in state %s%s", id, im.State, why)
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}

// register makes the AMI of an uploaded snapshot.
func register(ctx context.Context, c *clients, img *pack.Image, snap string, gib int64, tags map[string]string) (string, error) {
	out, err := c.ec2.RegisterImage(ctx, &ec2.RegisterImageInput{
		Name:               awssdk.String(amiName(img.Digest)),
		Description:        awssdk.String(fmt.Sprintf("unikfile image of app %s (%s, %s boot)", img.App, img.Base, img.Boot)),
		Architecture:       ec2types.ArchitectureValuesX8664,
		VirtualizationType: awssdk.String("hvm"),
		EnaSupport:         awssdk.Bool(true),
		BootMode:           bootMode(img),
		RootDeviceName:     awssdk.String(RootDevice),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: awssdk.String(RootDevice),
			Ebs: &ec2types.EbsBlockDevice{
				SnapshotId:          awssdk.String(snap),
				VolumeSize:          awssdk.Int32(int32(gib)),
				VolumeType:          ec2types.VolumeTypeGp3,
				DeleteOnTermination: awssdk.Bool(true),
			},
		}},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: ec2Tags(tags)}},
	})
	if err != nil {
		return "", explain(c.region, err)
	}
	return awssdk.ToString(out.ImageId), nil
}

func ec2Tags(m map[string]string) []ec2types.Tag {
	var out []ec2types.Tag
	for _, k := range sortedKeys(m) {
		out = append(out, ec2types.Tag{Key: awssdk.String(k), Value: awssdk.String(m[k])})
	}
	return out
}

func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if awssdk.ToString(t.Key) == key {
			return awssdk.ToString(t.Value)
		}
	}
	return ""
}

// rootSnapshot is the snapshot behind an AMI's root device.
func rootSnapshot(im ec2types.Image) string {
	for _, m := range im.BlockDeviceMappings {
		if m.Ebs != nil && awssdk.ToString(m.DeviceName) == awssdk.ToString(im.RootDeviceName) {
			return awssdk.ToString(m.Ebs.SnapshotId)
		}
	}
	return ""
}

// Images lists the AMIs unikfile made in the target's region (any state
// but deregistered), for `unikfile images --target`.
func (p *Provider) Images(ctx context.Context, t *lang.Target) ([]deploy.RemoteImage, error) {
	c, err := p.clientsFor(ctx, SettingsOf(t).Region)
	if err != nil {
		return nil, err
	}
	var out []deploy.RemoteImage
	in := &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []ec2types.Filter{managedFilter(TagManaged, "true")}}
	for {
		res, err := c.ec2.DescribeImages(ctx, in)
		if err != nil {
			return nil, explain(c.region, err)
		}
		for _, im := range res.Images {
			r := deploy.RemoteImage{ID: awssdk.ToString(im.ImageId), Digest: tagValue(im.Tags, TagDigest),
				App: tagValue(im.Tags, TagApp), State: string(im.State), Where: c.region}
			r.Created, _ = time.Parse(time.RFC3339, awssdk.ToString(im.CreationDate))
			out = append(out, r)
		}
		if awssdk.ToString(res.NextToken) == "" {
			break
		}
		in.NextToken = res.NextToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

var _ deploy.ImageLister = (*Provider)(nil)

package aws

import (
	"context"
	"fmt"
	"slices"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// subnetOf resolves the subnet to run in (id, or the default VPC's default
// subnet) and its VPC.
func subnetOf(ctx context.Context, c *clients, id string) (string, string, error) {
	in := &ec2.DescribeSubnetsInput{}
	if id != "" {
		in.SubnetIds = []string{id}
	} else {
		in.Filters = []ec2types.Filter{{Name: awssdk.String("default-for-az"), Values: []string{"true"}}}
	}
	out, err := c.ec2.DescribeSubnets(ctx, in)
	if code(err) == "InvalidSubnetID.NotFound" {
		return "", "", fmt.Errorf("aws: subnet %s does not exist in region %s; set aws { subnet } to one of that region's subnets (aws ec2 describe-subnets), or leave it out for the default VPC's", id, c.region)
	}
	if err != nil {
		return "", "", explain(c.region, err)
	}
	subnets := out.Subnets
	slices.SortFunc(subnets, func(a, b ec2types.Subnet) int {
		return compare(awssdk.ToString(a.AvailabilityZone), awssdk.ToString(b.AvailabilityZone))
	})
	if len(subnets) == 0 {
		return "", "", fmt.Errorf("aws: region %s has no default VPC (no default subnet); set aws { subnet = \"subnet-...\" } in the target, or create a default VPC (aws ec2 create-default-vpc)", c.region)
	}
	return awssdk.ToString(subnets[0].SubnetId), awssdk.ToString(subnets[0].VpcId), nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rule is one TCP port open to one CIDR block.
type rule struct {
	port int
	cidr string
}

// findGroup finds unikfile's security group of a target's app in vpc by
// its tags; "" if there is none.
func findGroup(ctx context.Context, c *clients, vpc string, tags map[string]string) (ec2types.SecurityGroup, bool, error) {
	filters := []ec2types.Filter{managedFilter(TagManaged, "true"), managedFilter(TagProject, tags[TagProject]),
		managedFilter(TagTarget, tags[TagTarget]), managedFilter(TagApp, tags[TagApp])}
	if vpc != "" {
		filters = append(filters, ec2types.Filter{Name: awssdk.String("vpc-id"), Values: []string{vpc}})
	}
	out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return ec2types.SecurityGroup{}, false, explain(c.region, err)
	}
	if len(out.SecurityGroups) == 0 {
		return ec2types.SecurityGroup{}, false, nil
	}
	return out.SecurityGroups[0], true, nil
}

// ensureGroup makes sure the app's security group exists in vpc and
// holds exactly ports × ingress. created says whether this call made it.
func ensureGroup(ctx context.Context, c *clients, vpc, name string, tags map[string]string, ports []int, ingress []string, poll time.Duration) (string, bool, error) {
	g, ok, err := findGroup(ctx, c, vpc, tags)
	if err != nil {
		return "", false, err
	}
	created := false
	if !ok {
		out, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName:         awssdk.String(name),
			Description:       awssdk.String("unikfile: the ports of app " + tags[TagApp] + " of target " + tags[TagTarget]),
			VpcId:             awssdk.String(vpc),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: ec2Tags(tags)}},
		})
		if err != nil {
			return "", false, explain(c.region, err)
		}
		g = ec2types.SecurityGroup{GroupId: out.GroupId}
		created = true
	}
	id := awssdk.ToString(g.GroupId)
	want := map[rule]bool{}
	for _, p := range ports {
		for _, cidr := range ingress {
			want[rule{p, cidr}] = true
		}
	}
	var extra []ec2types.IpPermission
	have := map[rule]bool{}
	for _, perm := range g.IpPermissions {
		for _, r := range perm.IpRanges {
			from, to := int(awssdk.ToInt32(perm.FromPort)), int(awssdk.ToInt32(perm.ToPort))
			x := rule{from, awssdk.ToString(r.CidrIp)}
			if awssdk.ToString(perm.IpProtocol) == "tcp" && from == to && want[x] {
				have[x] = true
				continue
			}
			extra = append(extra, ec2types.IpPermission{IpProtocol: perm.IpProtocol, FromPort: perm.FromPort, ToPort: perm.ToPort,
				IpRanges: []ec2types.IpRange{{CidrIp: r.CidrIp}}})
		}
	}
	if len(extra) > 0 {
		if _, err := c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: awssdk.String(id), IpPermissions: extra}); err != nil {
			return id, created, explain(c.region, err)
		}
	}
	var missing []ec2types.IpPermission
	for _, p := range ports {
		for _, cidr := range ingress {
			if have[rule{p, cidr}] {
				continue
			}
			missing = append(missing, ec2types.IpPermission{IpProtocol: awssdk.String("tcp"), FromPort: awssdk.Int32(int32(p)), ToPort: awssdk.Int32(int32(p)),
				IpRanges: []ec2types.IpRange{{CidrIp: awssdk.String(cidr), Description: awssdk.String("unikfile ingress")}}})
		}
	}
	w, start := waiter{max: poll}, time.Now()
	for len(missing) > 0 {
		_, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: awssdk.String(id), IpPermissions: missing})
		if err == nil {
			break
		}
		if code(err) != "InvalidGroup.NotFound" || !created || time.Since(start) > notFoundGrace {
			return id, created, explain(c.region, err)
		}
		if err := w.sleep(ctx); err != nil { // EC2 does not know the new group yet
			return id, created, err
		}
	}
	return id, created, nil
}

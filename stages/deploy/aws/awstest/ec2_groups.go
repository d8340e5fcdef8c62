package awstest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Security groups and their ingress rules.

func (s *Server) createSecurityGroup(p params, w http.ResponseWriter) *apiError {
	if e := p.required("GroupName", "GroupDescription"); e != nil {
		return e
	}
	name := p["GroupName"]
	if strings.HasPrefix(name, "sg-") || len(name) > 255 {
		return errf(400, "InvalidParameterValue", "Group names may not be longer than 255 characters or start with sg-")
	}
	vpc := p["VpcId"]
	if vpc == "" {
		if s.opts.NoDefaultVPC {
			return errf(400, "VPCIdNotSpecified", "No default VPC for this user")
		}
		vpc = DefaultVPC
	}
	if !slices.ContainsFunc(sortedValues(s.subnets), func(sn *subnet) bool { return sn.VPC == vpc }) {
		return errf(400, "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpc)
	}
	for _, g := range s.groups {
		if !g.deleted && g.VPC == vpc && g.Name == name {
			return errf(400, "InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpc)
		}
	}
	t, _, e := p.tagSpecs("security-group")
	if e != nil {
		return e
	}
	g := &group{ID: s.nextID("sg"), Name: name, Description: p["GroupDescription"], VPC: vpc, Tags: t, created: s.now()}
	s.groups[g.ID] = g
	writeEC2(w, "CreateSecurityGroup", func(x *xb) {
		x.leaf("return", "true")
		x.leaf("groupId", g.ID)
		x.tags(g.Tags)
	})
	return nil
}

func (s *Server) describeSecurityGroups(p params, w http.ResponseWriter) *apiError {
	fs, e := p.filters(func(n string) bool { return slices.Contains([]string{"group-name", "vpc-id", "group-id"}, n) })
	if e != nil {
		return e
	}
	ids := p.list("GroupId")
	for _, id := range ids {
		if g := s.groups[id]; g == nil || g.deleted || s.fresh(g.created) {
			return errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
	}
	var out []*group
	for _, g := range sortedValues(s.groups) {
		if g.deleted || s.fresh(g.created) || len(ids) > 0 && !slices.Contains(ids, g.ID) {
			continue
		}
		if match(fs, g.Tags, func(n string) []string {
			switch n {
			case "group-name":
				return []string{g.Name}
			case "vpc-id":
				return []string{g.VPC}
			}
			return []string{g.ID}
		}) {
			out = append(out, g)
		}
	}
	writeEC2(w, "DescribeSecurityGroups", func(x *xb) {
		x.open("securityGroupInfo")
		for _, g := range out {
			x.open("item")
			x.leaf("ownerId", Account)
			x.leaf("groupId", g.ID)
			x.leaf("groupName", g.Name)
			x.leaf("groupDescription", g.Description)
			x.leaf("vpcId", g.VPC)
			x.open("ipPermissions")
			for _, r := range g.Ingress {
				x.open("item")
				x.leaf("ipProtocol", r.Proto)
				x.leaf("fromPort", strconv.Itoa(r.From))
				x.leaf("toPort", strconv.Itoa(r.To))
				x.open("ipRanges")
				x.open("item")
				x.leaf("cidrIp", r.CIDR)
				x.close("item")
				x.close("ipRanges")
				x.close("item")
			}
			x.close("ipPermissions")
			x.open("ipPermissionsEgress")
			x.open("item")
			x.leaf("ipProtocol", "-1")
			x.open("ipRanges")
			x.open("item")
			x.leaf("cidrIp", "0.0.0.0/0")
			x.close("item")
			x.close("ipRanges")
			x.close("item")
			x.close("ipPermissionsEgress")
			x.tags(g.Tags)
			x.close("item")
		}
		x.close("securityGroupInfo")
	})
	return nil
}

var cidrPattern = regexp.MustCompile(`^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$`)

// perms reads IpPermissions.N into one rule per CIDR.
func perms(p params) ([]perm, *apiError) {
	var out []perm
	for _, ip := range p.sub("IpPermissions") {
		proto := ip["IpProtocol"]
		if proto == "" {
			return nil, errf(400, "MissingParameter", "The request must contain the parameter ipProtocol")
		}
		if proto != "tcp" && proto != "udp" && proto != "icmp" && proto != "-1" {
			return nil, errf(400, "InvalidParameterValue", "Invalid value '%s' for IP protocol.", proto)
		}
		from, e := ip.integer("FromPort")
		if e != nil {
			return nil, e
		}
		to, e := ip.integer("ToPort")
		if e != nil {
			return nil, e
		}
		if proto == "tcp" && (from < 0 || to > 65535 || from > to) {
			return nil, errf(400, "InvalidParameterValue", "Invalid TCP port range %d-%d", from, to)
		}
		ranges := ip.sub("IpRanges")
		if len(ranges) == 0 {
			return nil, errf(400, "InvalidParameterValue", "A rule needs a source (IpRanges)")
		}
		for _, r := range ranges {
			if !cidrPattern.MatchString(r["CidrIp"]) {
				return nil, errf(400, "InvalidParameterValue", "CIDR block %s is malformed", r["CidrIp"])
			}
			out = append(out, perm{Proto: proto, From: from, To: to, CIDR: r["CidrIp"]})
		}
	}
	if len(out) == 0 {
		return nil, errf(400, "MissingParameter", "The request must contain the parameter IpPermissions")
	}
	return out, nil
}

func (s *Server) groupFor(p params) (*group, *apiError) {
	if e := p.required("GroupId"); e != nil {
		return nil, e
	}
	g := s.groups[p["GroupId"]]
	if g == nil || g.deleted {
		return nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", p["GroupId"])
	}
	return g, nil
}

func (s *Server) authorizeIngress(p params, w http.ResponseWriter) *apiError {
	g, e := s.groupFor(p)
	if e != nil {
		return e
	}
	if s.fresh(g.created) {
		return errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", g.ID)
	}
	ps, e := perms(p)
	if e != nil {
		return e
	}
	for _, r := range ps {
		if slices.Contains(g.Ingress, r) {
			return errf(400, "InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, ALLOW\" already exists", r.CIDR, r.Proto)
		}
	}
	g.Ingress = append(g.Ingress, ps...)
	writeEC2(w, "AuthorizeSecurityGroupIngress", func(x *xb) { x.leaf("return", "true") })
	return nil
}

func (s *Server) revokeIngress(p params, w http.ResponseWriter) *apiError {
	g, e := s.groupFor(p)
	if e != nil {
		return e
	}
	ps, e := perms(p)
	if e != nil {
		return e
	}
	for _, r := range ps {
		if !slices.Contains(g.Ingress, r) {
			return errf(400, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
		}
	}
	g.Ingress = slices.DeleteFunc(g.Ingress, func(r perm) bool { return slices.Contains(ps, r) })
	writeEC2(w, "RevokeSecurityGroupIngress", func(x *xb) { x.leaf("return", "true") })
	return nil
}

func (s *Server) deleteSecurityGroup(p params, w http.ResponseWriter) *apiError {
	g, e := s.groupFor(p)
	if e != nil {
		return e
	}
	if g.builtin {
		return errf(400, "CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.ID)
	}
	for _, in := range sortedValues(s.instances) {
		if in.State != "terminated" && slices.Contains(in.Groups, g.ID) {
			return errf(400, "DependencyViolation", "resource %s has a dependent object", g.ID)
		}
	}
	g.deleted = true
	writeEC2(w, "DeleteSecurityGroup", func(x *xb) {
		x.leaf("return", "true")
		x.leaf("groupId", g.ID)
	})
	return nil
}

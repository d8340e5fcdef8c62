package awstest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ec2Version is the EC2 API version the SDK speaks.
const ec2Version = "2016-11-15"

type ec2Handler func(s *Server, p params, w http.ResponseWriter) *apiError

// ec2Actions are the EC2 actions the endpoint implements, with the IAM
// actions each needs besides ec2:<Action> (tagging at creation).
var ec2Actions = map[string]ec2Handler{
	"DescribeSubnets":               (*Server).describeSubnets,
	"DescribeImages":                (*Server).describeImages,
	"RegisterImage":                 (*Server).registerImage,
	"DeregisterImage":               (*Server).deregisterImage,
	"DescribeSnapshots":             (*Server).describeSnapshots,
	"DeleteSnapshot":                (*Server).deleteSnapshot,
	"CreateSecurityGroup":           (*Server).createSecurityGroup,
	"DescribeSecurityGroups":        (*Server).describeSecurityGroups,
	"AuthorizeSecurityGroupIngress": (*Server).authorizeIngress,
	"RevokeSecurityGroupIngress":    (*Server).revokeIngress,
	"DeleteSecurityGroup":           (*Server).deleteSecurityGroup,
	"RunInstances":                  (*Server).runInstances,
	"DescribeInstances":             (*Server).describeInstances,
	"TerminateInstances":            (*Server).terminateInstances,
	"GetConsoleOutput":              (*Server).getConsoleOutput,
}

func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeEC2Error(w, errf(400, "InvalidAction", "The EC2 Query API is POST / (got %s %s)", r.Method, r.URL.Path))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeEC2Error(w, errf(400, "InvalidParameterValue", "Content-Type %q is not application/x-www-form-urlencoded", ct))
		return
	}
	if ae := verifySigV4(r, body, AccessKey, SecretKey, s.opts.Region, "ec2", false, time.Now()); ae != nil {
		s.mu.Lock()
		s.record("ec2", "?", &apiError{Code: "AuthFailure"})
		s.mu.Unlock()
		if ae.kind == "expired" {
			writeEC2Error(w, errf(400, "RequestExpired", "%s", ae.msg))
			return
		}
		if ae.kind == "credentials" {
			ae.msg = "AWS was not able to validate the provided access credentials"
		}
		writeEC2Error(w, errf(401, "AuthFailure", "%s", ae.msg))
		return
	}
	p, err := parseQuery(body)
	if err != nil {
		writeEC2Error(w, errf(400, "InvalidParameterValue", "%v", err))
		return
	}
	action := p["Action"]
	h, ok := ec2Actions[action]
	if !ok {
		writeEC2Error(w, errf(400, "InvalidAction", "The action %s is not valid for this web service.", action))
		return
	}
	if p["Version"] != ec2Version {
		writeEC2Error(w, errf(400, "InvalidParameterValue", "Version %q is not %s", p["Version"], ec2Version))
		return
	}
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(action)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	need := []string{"ec2:" + action}
	if len(p.sub("TagSpecification")) > 0 {
		need = append(need, "ec2:CreateTags")
	}
	e := s.permitted("ec2", need...)
	if e == nil {
		e = s.fault(action)
	}
	if e == nil {
		e = h(s, p, w)
	}
	s.record("ec2", action, e)
	if e != nil {
		writeEC2Error(w, e)
	}
}

// self reads Owner.N: only the caller's own resources are kept ("self" or
// the account's ID); other owners have none here.
func ownerSelf(p params) bool {
	owners := p.list("Owner")
	return len(owners) == 0 || slices.Contains(owners, "self") || slices.Contains(owners, Account)
}

func (s *Server) describeSubnets(p params, w http.ResponseWriter) *apiError {
	fs, e := p.filters(func(n string) bool {
		return slices.Contains([]string{"default-for-az", "vpc-id", "subnet-id", "availability-zone"}, n)
	})
	if e != nil {
		return e
	}
	ids := p.list("SubnetId")
	for _, id := range ids {
		if s.subnets[id] == nil {
			return errf(400, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	}
	var out []*subnet
	for _, sn := range sortedValues(s.subnets) {
		if len(ids) > 0 && !slices.Contains(ids, sn.ID) {
			continue
		}
		if match(fs, nil, func(n string) []string {
			switch n {
			case "default-for-az":
				return []string{strconv.FormatBool(sn.Default)}
			case "vpc-id":
				return []string{sn.VPC}
			case "availability-zone":
				return []string{sn.AZ}
			}
			return []string{sn.ID}
		}) {
			out = append(out, sn)
		}
	}
	writeEC2(w, "DescribeSubnets", func(x *xb) {
		x.open("subnetSet")
		for _, sn := range out {
			x.open("item")
			x.leaf("subnetId", sn.ID)
			x.leaf("vpcId", sn.VPC)
			x.leaf("cidrBlock", sn.CIDR)
			x.leaf("availabilityZone", sn.AZ)
			x.leaf("defaultForAz", strconv.FormatBool(sn.Default))
			x.leaf("mapPublicIpOnLaunch", strconv.FormatBool(sn.MapPublic))
			x.leaf("state", "available")
			x.leaf("ownerId", Account)
			x.close("item")
		}
		x.close("subnetSet")
	})
	return nil
}

var amiName = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)

func (s *Server) registerImage(p params, w http.ResponseWriter) *apiError {
	if e := p.required("Name"); e != nil {
		return e
	}
	name := p["Name"]
	if !amiName.MatchString(name) {
		return errf(400, "InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'")
	}
	for _, im := range s.images {
		if im.Name == name && im.State != "deregistered" {
			return errf(400, "InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, im.ID)
		}
	}
	if p.has("ImageLocation") {
		return errf(400, "InvalidParameterCombination", "This endpoint registers EBS-backed AMIs only")
	}
	im := &image{Name: name, Description: p["Description"], Root: p["RootDeviceName"], Arch: p["Architecture"], Virt: p["VirtualizationType"], BootMode: p["BootMode"], Created: s.now()}
	if im.Arch == "" {
		im.Arch = "x86_64"
	}
	if !slices.Contains([]string{"i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"}, im.Arch) {
		return errf(400, "InvalidParameterValue", "Value (%s) for parameter architecture is invalid.", im.Arch)
	}
	if im.Virt == "" {
		im.Virt = "paravirtual"
	}
	if im.Virt != "hvm" && im.Virt != "paravirtual" {
		return errf(400, "InvalidParameterValue", "Value (%s) for parameter virtualizationType is invalid.", im.Virt)
	}
	if im.BootMode != "" && !slices.Contains([]string{"legacy-bios", "uefi", "uefi-preferred"}, im.BootMode) {
		return errf(400, "InvalidParameterValue", "Value (%s) for parameter bootMode is invalid.", im.BootMode)
	}
	var e *apiError
	if im.Ena, e = p.boolean("EnaSupport"); e != nil {
		return e
	}
	if im.Root == "" {
		return errf(400, "InvalidParameterValue", "The request must contain the parameter RootDeviceName for an EBS-backed AMI")
	}
	for _, bd := range p.sub("BlockDeviceMapping") {
		m := mapping{Device: bd["DeviceName"], Snapshot: bd["Ebs.SnapshotId"], VolumeType: bd["Ebs.VolumeType"]}
		if m.Device == "" {
			return errf(400, "InvalidBlockDeviceMapping", "Every block device mapping must have a DeviceName")
		}
		if v := bd["Ebs.VolumeSize"]; v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || n > 65536 {
				return errf(400, "InvalidParameterValue", "Volume size %s is not valid", v)
			}
			m.Size = n
		}
		m.DeleteOnTermination = bd["Ebs.DeleteOnTermination"] != "false"
		if m.VolumeType == "" {
			m.VolumeType = "gp2"
		}
		if !slices.Contains([]string{"standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"}, m.VolumeType) {
			return errf(400, "InvalidParameterValue", "Value (%s) for parameter volumeType is invalid.", m.VolumeType)
		}
		if m.Snapshot != "" {
			sn := s.snapshots[m.Snapshot]
			switch {
			case sn == nil || sn.deleted:
				return errf(400, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", m.Snapshot)
			case sn.Status != "completed":
				return errf(400, "IncorrectState", "Snapshot %s is in state %s, not completed", sn.ID, sn.Status)
			}
			if m.Size == 0 {
				m.Size = sn.VolumeSize
			}
			if m.Size < sn.VolumeSize {
				return errf(400, "InvalidBlockDeviceMapping", "Volume of %d GiB is smaller than snapshot %s (%d GiB)", m.Size, sn.ID, sn.VolumeSize)
			}
		}
		im.Mappings = append(im.Mappings, m)
	}
	root := slices.IndexFunc(im.Mappings, func(m mapping) bool { return m.Device == im.Root })
	if root < 0 || im.Mappings[root].Snapshot == "" {
		return errf(400, "InvalidBlockDeviceMapping", "The root device name %s has no block device mapping with a snapshot", im.Root)
	}
	if im.Tags, _, e = p.tagSpecs("image"); e != nil {
		return e
	}
	im.ID = s.nextID("ami")
	im.State, im.final, im.readyAt = "pending", "available", s.now().Add(s.opts.ImageDelay)
	if s.failImgs != "" {
		im.final = "failed"
	}
	s.images[im.ID] = im
	writeEC2(w, "RegisterImage", func(x *xb) { x.leaf("imageId", im.ID) })
	return nil
}

func (s *Server) describeImages(p params, w http.ResponseWriter) *apiError {
	fs, e := p.filters(func(n string) bool { return slices.Contains([]string{"name", "state", "image-id"}, n) })
	if e != nil {
		return e
	}
	ids := p.list("ImageId")
	for _, id := range ids {
		if im := s.images[id]; im == nil || im.State == "deregistered" || s.fresh(im.Created) {
			return errf(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	var out []*image
	for _, im := range sortedValues(s.images) {
		if im.State == "deregistered" || s.fresh(im.Created) || !ownerSelf(p) || len(ids) > 0 && !slices.Contains(ids, im.ID) {
			continue
		}
		if match(fs, im.Tags, func(n string) []string {
			switch n {
			case "name":
				return []string{im.Name}
			case "state":
				return []string{im.State}
			}
			return []string{im.ID}
		}) {
			out = append(out, im)
		}
	}
	writeEC2(w, "DescribeImages", func(x *xb) {
		x.open("imagesSet")
		for _, im := range out {
			x.open("item")
			x.leaf("imageId", im.ID)
			x.leaf("name", im.Name)
			x.leaf("imageState", im.State)
			if im.Reason != "" {
				x.open("stateReason")
				x.leaf("code", "Client.ImageFailed")
				x.leaf("message", im.Reason)
				x.close("stateReason")
			}
			x.leaf("imageOwnerId", Account)
			x.leaf("creationDate", im.Created.UTC().Format("2006-01-02T15:04:05.000Z"))
			x.leaf("architecture", im.Arch)
			x.leaf("imageType", "machine")
			x.leaf("rootDeviceType", "ebs")
			x.leaf("rootDeviceName", im.Root)
			x.leaf("virtualizationType", im.Virt)
			if im.BootMode != "" {
				x.leaf("bootMode", im.BootMode)
			}
			x.leaf("enaSupport", strconv.FormatBool(im.Ena))
			x.open("blockDeviceMapping")
			for _, m := range im.Mappings {
				x.open("item")
				x.leaf("deviceName", m.Device)
				x.open("ebs")
				x.leaf("snapshotId", m.Snapshot)
				x.leaf("volumeSize", strconv.FormatInt(m.Size, 10))
				x.leaf("deleteOnTermination", strconv.FormatBool(m.DeleteOnTermination))
				x.leaf("volumeType", m.VolumeType)
				x.close("ebs")
				x.close("item")
			}
			x.close("blockDeviceMapping")
			x.tags(im.Tags)
			x.close("item")
		}
		x.close("imagesSet")
	})
	return nil
}

func (s *Server) deregisterImage(p params, w http.ResponseWriter) *apiError {
	if e := p.required("ImageId"); e != nil {
		return e
	}
	im := s.images[p["ImageId"]]
	if im == nil {
		return errf(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", p["ImageId"])
	}
	if im.State == "deregistered" {
		return errf(400, "InvalidAMIID.Unavailable", "The image id '[%s]' is no longer available", im.ID)
	}
	im.State = "deregistered"
	writeEC2(w, "DeregisterImage", func(x *xb) { x.leaf("return", "true") })
	return nil
}

func (s *Server) describeSnapshots(p params, w http.ResponseWriter) *apiError {
	fs, e := p.filters(func(n string) bool { return slices.Contains([]string{"status", "snapshot-id", "owner-id"}, n) })
	if e != nil {
		return e
	}
	ids := p.list("SnapshotId")
	for _, id := range ids {
		if sn := s.snapshots[id]; sn == nil || sn.deleted || s.fresh(sn.Start) {
			return errf(400, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
		}
	}
	var out []*snapshot
	for _, sn := range sortedValues(s.snapshots) {
		if sn.deleted || s.fresh(sn.Start) || !ownerSelf(p) || len(ids) > 0 && !slices.Contains(ids, sn.ID) {
			continue
		}
		if match(fs, sn.Tags, func(n string) []string {
			switch n {
			case "status":
				return []string{sn.Status}
			case "owner-id":
				return []string{Account}
			}
			return []string{sn.ID}
		}) {
			out = append(out, sn)
		}
	}
	writeEC2(w, "DescribeSnapshots", func(x *xb) {
		x.open("snapshotSet")
		for _, sn := range out {
			x.open("item")
			x.leaf("snapshotId", sn.ID)
			x.leaf("volumeId", "vol-ffffffff")
			x.leaf("status", sn.Status)
			if sn.StatusMessage != "" {
				x.leaf("statusMessage", sn.StatusMessage)
			}
			x.leaf("startTime", sn.Start.UTC().Format("2006-01-02T15:04:05.000Z"))
			progress := "0%"
			if sn.Status == "completed" {
				progress = "100%"
			}
			x.leaf("progress", progress)
			x.leaf("ownerId", Account)
			x.leaf("volumeSize", strconv.FormatInt(sn.VolumeSize, 10))
			x.leaf("description", sn.Description)
			x.leaf("encrypted", "false")
			x.tags(sn.Tags)
			x.close("item")
		}
		x.close("snapshotSet")
	})
	return nil
}

func (s *Server) deleteSnapshot(p params, w http.ResponseWriter) *apiError {
	if e := p.required("SnapshotId"); e != nil {
		return e
	}
	sn := s.snapshots[p["SnapshotId"]]
	if sn == nil || sn.deleted {
		return errf(400, "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", p["SnapshotId"])
	}
	for _, im := range sortedValues(s.images) {
		if im.State == "deregistered" {
			continue
		}
		for _, m := range im.Mappings {
			if m.Snapshot == sn.ID {
				return errf(400, "InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", sn.ID, im.ID)
			}
		}
	}
	sn.deleted = true
	writeEC2(w, "DeleteSnapshot", func(x *xb) { x.leaf("return", "true") })
	return nil
}

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

// instanceTypes are the instance types the endpoint launches; nitro says
// whether the type is on the Nitro system (ENA required, UEFI possible).
var instanceTypes = map[string]bool{
	"t2.micro": false, "t2.small": false, "t2.medium": false,
	"t3.nano": true, "t3.micro": true, "t3.small": true, "t3.medium": true, "t3.large": true,
	"t3a.micro": true, "t3a.small": true, "m5.large": true, "m6i.large": true, "c5.large": true, "c6i.large": true,
}

func (s *Server) runInstances(p params, w http.ResponseWriter) *apiError {
	if e := p.required("ImageId", "MinCount", "MaxCount"); e != nil {
		return e
	}
	minC, e := p.integer("MinCount")
	if e != nil {
		return e
	}
	maxC, e := p.integer("MaxCount")
	if e != nil {
		return e
	}
	if minC < 1 || maxC < minC {
		return errf(400, "InvalidParameterValue", "MinCount %d and MaxCount %d are not a valid range", minC, maxC)
	}
	itype := p["InstanceType"]
	if itype == "" {
		itype = "m1.small"
	}
	nitro, known := instanceTypes[itype]
	if !known {
		return errf(400, "InvalidParameterValue", "Invalid value '%s' for InstanceType.", itype)
	}
	im := s.images[p["ImageId"]]
	switch {
	case im == nil || im.State == "deregistered":
		return errf(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", p["ImageId"])
	case im.State != "available":
		return errf(400, "InvalidAMIID.Unavailable", "The image id '[%s]' is not available (state %s)", im.ID, im.State)
	case nitro && !im.Ena:
		return errf(400, "InvalidParameterCombination", "Enhanced networking with the Elastic Network Adapter (ENA) is required for the '%s' instance type. Ensure that you are using an AMI that is enabled for ENA.", itype)
	case !nitro && im.BootMode == "uefi":
		return errf(400, "InvalidParameterCombination", "The instance type '%s' does not support the boot mode 'uefi' of AMI %s", itype, im.ID)
	}
	subnetID, groups := p["SubnetId"], p.list("SecurityGroupId")
	public, explicit := false, false
	if nis := p.sub("NetworkInterface"); len(nis) > 0 {
		if subnetID != "" || len(groups) > 0 {
			return errf(400, "InvalidParameterCombination", "Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request")
		}
		if len(nis) > 1 {
			return errf(400, "InvalidParameterValue", "This endpoint launches instances with one network interface")
		}
		ni := nis[0]
		if ni["DeviceIndex"] != "0" {
			return errf(400, "InvalidParameterValue", "The primary network interface must have DeviceIndex 0")
		}
		subnetID, groups = ni["SubnetId"], ni.list("SecurityGroupId")
		if ni.has("AssociatePublicIpAddress") {
			explicit = true
			if public, e = ni.boolean("AssociatePublicIpAddress"); e != nil {
				return e
			}
		}
	}
	var sn *subnet
	if subnetID == "" {
		for _, x := range sortedValues(s.subnets) {
			if x.Default {
				sn = x
			}
		}
		if sn == nil {
			return errf(400, "VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
		}
	} else if sn = s.subnets[subnetID]; sn == nil {
		return errf(400, "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
	}
	if !explicit {
		public = sn.MapPublic
	}
	for _, id := range groups {
		g := s.groups[id]
		if g == nil || g.deleted {
			return errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", id, sn.VPC)
		}
		if g.VPC != sn.VPC {
			return errf(400, "InvalidParameter", "Security group %s and subnet %s belong to different networks.", id, sn.ID)
		}
	}
	if len(groups) == 0 {
		for _, g := range sortedValues(s.groups) {
			if g.builtin && g.VPC == sn.VPC {
				groups = []string{g.ID}
			}
		}
	}
	itags, _, e := p.tagSpecs("instance", "volume", "network-interface")
	if e != nil {
		return e
	}
	// The parameters that make a request the same one again.
	sig := fmt.Sprintf("%s|%s|%s|%v|%d|%d", im.ID, itype, sn.ID, groups, minC, maxC)
	token := p["ClientToken"]
	var launched []*instance
	if token != "" {
		for _, in := range sortedValues(s.instances) {
			if in.token == token {
				if in.params != sig {
					return errf(400, "IdempotentParameterMismatch", "The client token %s was used before with other parameters", token)
				}
				launched = append(launched, in)
			}
		}
	}
	if launched == nil {
		for range maxC {
			sn.ips++
			in := &instance{
				ID: s.nextID("i"), Image: im.ID, Type: itype, Subnet: sn.ID, VPC: sn.VPC, Groups: groups,
				PrivateIP: privateIP(sn, sn.ips), State: "pending", Tags: itags, Launched: s.now(),
				token: token, params: sig, next: "running", changeAt: s.now().Add(s.opts.RunDelay),
			}
			if public {
				in.PublicIP = fmt.Sprintf("203.0.113.%d", 1+s.seq%250)
			}
			in.guest = s.opts.Guest(Launch{InstanceID: in.ID, ImageID: im.ID, InstanceType: itype, PrivateIP: in.PrivateIP, Tags: itags.Map()})
			s.instances[in.ID] = in
			launched = append(launched, in)
		}
	}
	writeEC2(w, "RunInstances", func(x *xb) {
		x.leaf("reservationId", "r-"+strings.TrimPrefix(launched[0].ID, "i-"))
		x.leaf("ownerId", Account)
		x.open("instancesSet")
		for _, in := range launched {
			writeInstance(x, in)
		}
		x.close("instancesSet")
	})
	return nil
}

// privateIP is the n-th address of a subnet (its /24 or /20 prefix kept).
func privateIP(sn *subnet, n int) string {
	parts := strings.Split(strings.Split(sn.CIDR, "/")[0], ".")
	return fmt.Sprintf("%s.%s.%d.%d", parts[0], parts[1], n/250, 4+n%250)
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func writeState(x *xb, el, state string) {
	x.open(el)
	x.leaf("code", strconv.Itoa(stateCodes[state]))
	x.leaf("name", state)
	x.close(el)
}

func writeInstance(x *xb, in *instance) {
	x.open("item")
	x.leaf("instanceId", in.ID)
	x.leaf("imageId", in.Image)
	writeState(x, "instanceState", in.State)
	if in.Reason != "" {
		x.open("stateReason")
		code, msg, _ := strings.Cut(in.Reason, ": ")
		x.leaf("code", code)
		x.leaf("message", msg)
		x.close("stateReason")
	}
	x.leaf("instanceType", in.Type)
	x.leaf("launchTime", in.Launched.UTC().Format("2006-01-02T15:04:05.000Z"))
	x.leaf("subnetId", in.Subnet)
	x.leaf("vpcId", in.VPC)
	if in.State != "terminated" {
		x.leaf("privateIpAddress", in.PrivateIP)
		if in.PublicIP != "" && (in.State == "running" || in.State == "pending") {
			x.leaf("ipAddress", in.PublicIP)
		}
	}
	x.leaf("clientToken", in.token)
	x.open("groupSet")
	for _, g := range in.Groups {
		x.open("item")
		x.leaf("groupId", g)
		x.close("item")
	}
	x.close("groupSet")
	x.leaf("architecture", "x86_64")
	x.leaf("rootDeviceType", "ebs")
	x.leaf("rootDeviceName", "/dev/xvda")
	x.leaf("virtualizationType", "hvm")
	x.leaf("hypervisor", "xen")
	x.tags(in.Tags)
	x.close("item")
}

func (s *Server) describeInstances(p params, w http.ResponseWriter) *apiError {
	fs, e := p.filters(func(n string) bool {
		return slices.Contains([]string{"instance-state-name", "image-id", "instance.group-id", "instance-id", "subnet-id"}, n)
	})
	if e != nil {
		return e
	}
	ids := p.list("InstanceId")
	for _, id := range ids {
		if in := s.instances[id]; in == nil || s.fresh(in.Launched) {
			return errf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	var out []*instance
	for _, in := range sortedValues(s.instances) {
		if s.fresh(in.Launched) || len(ids) > 0 && !slices.Contains(ids, in.ID) {
			continue
		}
		if match(fs, in.Tags, func(n string) []string {
			switch n {
			case "instance-state-name":
				return []string{in.State}
			case "image-id":
				return []string{in.Image}
			case "instance.group-id":
				return in.Groups
			case "subnet-id":
				return []string{in.Subnet}
			}
			return []string{in.ID}
		}) {
			out = append(out, in)
		}
	}
	writeEC2(w, "DescribeInstances", func(x *xb) {
		x.open("reservationSet")
		for _, in := range out {
			x.open("item")
			x.leaf("reservationId", "r-"+strings.TrimPrefix(in.ID, "i-"))
			x.leaf("ownerId", Account)
			x.open("instancesSet")
			writeInstance(x, in)
			x.close("instancesSet")
			x.close("item")
		}
		x.close("reservationSet")
	})
	return nil
}

func (s *Server) terminateInstances(p params, w http.ResponseWriter) *apiError {
	ids := p.list("InstanceId")
	if len(ids) == 0 {
		return errf(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	for _, id := range ids {
		if s.instances[id] == nil {
			return errf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	type change struct{ id, prev, cur string }
	var changes []change
	for _, id := range ids {
		in := s.instances[id]
		prev := in.State
		if in.State != "terminated" && in.State != "shutting-down" {
			in.State, in.next, in.changeAt = "shutting-down", "terminated", s.now().Add(s.opts.TerminateDelay)
			in.Reason = "Client.UserInitiatedShutdown: User initiated shutdown"
		}
		changes = append(changes, change{id, prev, in.State})
	}
	writeEC2(w, "TerminateInstances", func(x *xb) {
		x.open("instancesSet")
		for _, c := range changes {
			x.open("item")
			x.leaf("instanceId", c.id)
			writeState(x, "currentState", c.cur)
			writeState(x, "previousState", c.prev)
			x.close("item")
		}
		x.close("instancesSet")
	})
	return nil
}

// consoleLimit is how much console output EC2 returns: the last 64 KiB.
const consoleLimit = 64 << 10

func (s *Server) getConsoleOutput(p params, w http.ResponseWriter) *apiError {
	if e := p.required("InstanceId"); e != nil {
		return e
	}
	in := s.instances[p["InstanceId"]]
	if in == nil || s.fresh(in.Launched) {
		return errf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", p["InstanceId"])
	}
	out := in.console
	if len(out) > consoleLimit {
		out = out[len(out)-consoleLimit:]
	}
	writeEC2(w, "GetConsoleOutput", func(x *xb) {
		x.leaf("instanceId", in.ID)
		x.leaf("timestamp", s.now().UTC().Format("2006-01-02T15:04:05.000Z"))
		if out != "" {
			x.leaf("output", base64.StdEncoding.EncodeToString([]byte(out)))
		}
	})
	return nil
}

// sortedValues returns a map's values in the order of their keys.
func sortedValues[V any](m map[string]V) []V {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]V, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

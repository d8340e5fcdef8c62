package awstest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Instances: launch, describe, terminate, console.

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

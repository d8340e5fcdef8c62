package awstest

import (
	"net/http"
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

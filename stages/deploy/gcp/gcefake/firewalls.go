package gcefake

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

type firewall struct {
	*compute.Firewall
	project string
}

var portsRe = regexp.MustCompile(`^([0-9]+)(-([0-9]+))?$`)

func init() {
	handle("compute.firewalls.insert", "POST", "projects/{project}/global/firewalls", (*Server).insertFirewall, "requestId")
	handle("compute.firewalls.get", "GET", "projects/{project}/global/firewalls/{firewall}", func(s *Server, r *request) (any, *apiError) {
		path := "projects/" + r.v("project") + "/global/firewalls/" + r.v("firewall")
		if e := s.permission("compute.firewalls.get", path); e != nil {
			return nil, e
		}
		f := s.firewalls[r.v("project")+"/"+r.v("firewall")]
		if f == nil {
			return nil, notFound(path)
		}
		return f.Firewall, nil
	})
	handle("compute.firewalls.delete", "DELETE", "projects/{project}/global/firewalls/{firewall}", func(s *Server, r *request) (any, *apiError) {
		project := r.v("project")
		path := "projects/" + project + "/global/firewalls/" + r.v("firewall")
		for _, p := range []string{"compute.firewalls.delete", "compute.networks.updatePolicy"} {
			if e := s.permission(p, path); e != nil {
				return nil, e
			}
		}
		if o, dup, e := s.requestID(r); dup || e != nil {
			return o, e
		}
		key := project + "/" + r.v("firewall")
		if s.firewalls[key] == nil {
			return nil, notFound(path)
		}
		return s.newOperation(r, project, "", "delete", path, func() *compute.OperationError {
			delete(s.firewalls, key)
			return nil
		}, nil), nil
	}, "requestId")
}

func (s *Server) insertFirewall(r *request) (any, *apiError) {
	project := r.v("project")
	var f compute.Firewall
	if e := decode(r, &f); e != nil {
		return nil, e
	}
	if e := checkName("resource.name", f.Name); e != nil {
		return nil, e
	}
	path := "projects/" + project + "/global/firewalls/" + f.Name
	for _, p := range []string{"compute.firewalls.create", "compute.networks.updatePolicy"} {
		if e := s.permission(p, path); e != nil {
			return nil, e
		}
	}
	if o, dup, e := s.requestID(r); dup || e != nil {
		return o, e
	}
	key := project + "/" + f.Name
	if s.firewalls[key] != nil {
		return nil, newError(409, "alreadyExists", "The resource '%s' already exists", path)
	}
	if nm := networkRe.FindStringSubmatch(resourcePath(f.Network)); f.Network != "" && (nm == nil || nm[2] != "default") {
		return nil, notFound(resourcePath(f.Network))
	}
	if f.Direction == "" {
		f.Direction = "INGRESS"
	}
	if f.Direction != "INGRESS" && f.Direction != "EGRESS" {
		return nil, invalid("resource.direction", "'%s'", f.Direction)
	}
	if len(f.Allowed) == 0 && len(f.Denied) == 0 {
		return nil, newError(400, "required", "Required field 'resource.allowed' not specified")
	}
	for i, a := range f.Allowed {
		switch a.IPProtocol {
		case "tcp", "udp", "sctp":
		case "icmp", "esp", "ah", "ipip", "all":
			if len(a.Ports) > 0 {
				return nil, invalid(fmt.Sprintf("resource.allowed[%d].ports", i), "ports can only be given for tcp, udp and sctp")
			}
		case "":
			return nil, newError(400, "required", "Required field 'resource.allowed[%d].IPProtocol' not specified", i)
		default:
			return nil, invalid(fmt.Sprintf("resource.allowed[%d].IPProtocol", i), "'%s'", a.IPProtocol)
		}
		for _, p := range a.Ports {
			m := portsRe.FindStringSubmatch(p)
			lo, _ := strconv.Atoi(m0(m, 1))
			hi := lo
			if m != nil && m[3] != "" {
				hi, _ = strconv.Atoi(m[3])
			}
			if m == nil || lo < 0 || hi > 65535 || lo > hi {
				return nil, invalid(fmt.Sprintf("resource.allowed[%d].ports", i), "'%s'", p)
			}
		}
	}
	for i, sr := range f.SourceRanges {
		if _, err := netip.ParsePrefix(sr); err != nil {
			return nil, invalid(fmt.Sprintf("resource.sourceRanges[%d]", i), "'%s'. Must be a CIDR range", sr)
		}
	}
	for i, t := range f.TargetTags {
		if !tagRe.MatchString(t) {
			return nil, invalid(fmt.Sprintf("resource.targetTags[%d]", i), "'%s'", t)
		}
	}
	if f.Direction == "INGRESS" && len(f.SourceRanges) == 0 && len(f.SourceTags) == 0 && len(f.SourceServiceAccounts) == 0 {
		// As GCE does: an ingress rule without sources lets everyone in.
		f.SourceRanges = []string{"0.0.0.0/0"}
	}
	if f.Priority == 0 {
		f.Priority = 1000
	}
	f.Kind, f.Id, f.SelfLink, f.CreationTimestamp = "compute#firewall", s.nextID(), s.selfLink(path), s.timestamp()
	f.Network = s.selfLink("projects/" + project + "/global/networks/default")
	s.firewalls[key] = &firewall{Firewall: &f, project: project}
	return s.newOperation(r, project, "", "insert", path, nil, func() { delete(s.firewalls, key) }), nil
}

func m0(m []string, i int) string {
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[i])
}

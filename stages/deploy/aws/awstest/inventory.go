package awstest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// tag is one key and value.
type tag struct{ Key, Value string }

type tags []tag

func (t tags) get(k string) (string, bool) {
	for _, x := range t {
		if x.Key == k {
			return x.Value, true
		}
	}
	return "", false
}

// Map returns the tags as a map.
func (t tags) Map() map[string]string {
	m := map[string]string{}
	for _, x := range t {
		m[x.Key] = x.Value
	}
	return m
}

type snapshot struct {
	ID, Description string
	VolumeSize      int64 // GiB
	Status          string
	StatusMessage   string
	Tags            tags
	Start           time.Time
	Timeout         time.Duration
	blocks          map[int64][]byte // block index → SHA-256 of its data
	doneAt          time.Time        // when a completion takes effect
	final, finalMsg string
	deleted         bool
	token           string
	params          string // the StartSnapshot parameters, for idempotency
}

type mapping struct {
	Device, Snapshot, VolumeType string
	Size                         int64
	DeleteOnTermination          bool
}

type image struct {
	ID, Name, Description, State, Reason string
	Root, BootMode, Arch, Virt           string
	Ena                                  bool
	Mappings                             []mapping
	Tags                                 tags
	Created                              time.Time
	readyAt                              time.Time
	final                                string
}

type instance struct {
	ID, Image, Type, Subnet, VPC string
	Groups                       []string
	PrivateIP, PublicIP          string
	State, Reason                string
	Tags                         tags
	Launched                     time.Time
	token                        string
	params                       string
	guest                        Guest
	changeAt                     time.Time
	next                         string
	console                      string
	thenAt                       time.Time
}

type perm struct {
	Proto    string
	From, To int
	CIDR     string
}

func (p perm) String() string { return fmt.Sprintf("%s %d-%d from %s", p.Proto, p.From, p.To, p.CIDR) }

type group struct {
	ID, Name, Description, VPC string
	created                    time.Time
	Ingress                    []perm
	Tags                       tags
	builtin, deleted           bool
}

type subnet struct {
	ID, VPC, CIDR, AZ string
	Default           bool
	MapPublic         bool
	ips               int
}

// Launch is what a guest stand-in knows of the instance it stands for.
type Launch struct {
	InstanceID, ImageID, InstanceType, PrivateIP string
	Tags                                         map[string]string
}

// Guest is what a stood-in guest prints on its console once its instance
// runs, and After that, Then. With Exit set the guest powers off once it
// has printed all (the instance stops); its console should end with the
// init's exit marker.
type Guest struct {
	Console string
	Then    string
	After   time.Duration
	Exit    *int
}

// DefaultGuest prints what the guest init prints when its app becomes
// ready: the kernel's first line, the address it got by DHCP, the ready
// marker. It says it is a stand-in.
func DefaultGuest(l Launch) Guest {
	return Guest{Console: strings.Join([]string{
		"[    0.000000] Linux version 6.1.0 (awstest guest stand-in: no guest boots on this endpoint)",
		"awstest: instance " + l.InstanceID + " of " + l.ImageID + " (image digest " + l.Tags["unikfile:digest"] + ")",
		"unikfile-init: address " + l.PrivateIP + "/20 via dhcp",
		"unikfile-init: ready",
		"",
	}, "\r\n")}
}

// advance applies the state changes whose time has come. Called with s.mu
// held.
func (s *Server) advance() {
	now := s.now()
	for _, sn := range s.snapshots {
		switch {
		case sn.deleted || sn.Status != "pending":
		case !sn.doneAt.IsZero() && !now.Before(sn.doneAt):
			sn.Status, sn.StatusMessage = sn.final, sn.finalMsg
		case sn.doneAt.IsZero() && now.Sub(sn.Start) > sn.Timeout:
			sn.Status, sn.StatusMessage = "error", "The snapshot was not completed before its timeout"
		}
	}
	for _, im := range s.images {
		if im.State == "pending" && !now.Before(im.readyAt) {
			im.State = im.final
			if im.final == "failed" {
				im.Reason = s.failImgs
			}
		}
	}
	for _, in := range s.instances {
		for in.next != "" && !now.Before(in.changeAt) {
			in.State, in.next = in.next, ""
			if in.State == "running" {
				in.console = in.guest.Console
				in.thenAt = in.changeAt.Add(in.guest.After)
				if in.guest.Then == "" && in.guest.Exit != nil {
					in.powerOff(in.changeAt, s.opts.StopDelay)
				}
			}
		}
		if in.State == "running" && in.guest.Then != "" && !in.thenAt.IsZero() && !now.Before(in.thenAt) {
			in.console += in.guest.Then
			in.thenAt = time.Time{}
			if in.guest.Exit != nil {
				in.powerOff(now, s.opts.StopDelay)
			}
		}
	}
}

// Resource is one thing of the inventory.
type Resource struct {
	Kind  string // snapshot, image, instance, security-group
	ID    string
	State string
	Tags  map[string]string
}

func (r Resource) String() string { return fmt.Sprintf("%s %s (%s)", r.Kind, r.ID, r.State) }

// Inventory lists what exists: snapshots not deleted, AMIs not
// deregistered, instances not terminated, security groups other than the
// VPCs' defaults. Instances shutting down count (they still exist).
func (s *Server) Inventory() []Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var out []Resource
	for _, sn := range s.snapshots {
		if !sn.deleted {
			out = append(out, Resource{"snapshot", sn.ID, sn.Status, sn.Tags.Map()})
		}
	}
	for _, im := range s.images {
		if im.State != "deregistered" {
			out = append(out, Resource{"image", im.ID, im.State, im.Tags.Map()})
		}
	}
	for _, in := range s.instances {
		if in.State != "terminated" {
			out = append(out, Resource{"instance", in.ID, in.State, in.Tags.Map()})
		}
	}
	for _, g := range s.groups {
		if !g.builtin && !g.deleted {
			out = append(out, Resource{"security-group", g.ID, "", g.Tags.Map()})
		}
	}
	slices.SortFunc(out, func(a, b Resource) int { return strings.Compare(a.Kind+a.ID, b.Kind+b.ID) })
	return out
}

// Ingress lists the ingress rules of security group id as
// "tcp 8080-8080 from 0.0.0.0/0".
func (s *Server) Ingress(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[id]
	if g == nil {
		return nil
	}
	var out []string
	for _, p := range g.Ingress {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// Blocks is how many blocks were written to snapshot id.
func (s *Server) Blocks(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.snapshots[id]; sn != nil {
		return len(sn.blocks)
	}
	return 0
}

// InstanceImage is the AMI instance id was launched from.
func (s *Server) InstanceImage(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[id]; in != nil {
		return in.Image
	}
	return ""
}

// ImageInfo is an AMI as registered.
type ImageInfo struct {
	ID, Name, State, BootMode, Root, Arch, Virt string
	Ena                                         bool
	Snapshot                                    string
	VolumeSize                                  int64
}

// Image describes AMI id.
func (s *Server) Image(id string) (ImageInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.images[id]
	if im == nil {
		return ImageInfo{}, false
	}
	info := ImageInfo{ID: im.ID, Name: im.Name, State: im.State, BootMode: im.BootMode, Root: im.Root, Arch: im.Arch, Virt: im.Virt, Ena: im.Ena}
	for _, m := range im.Mappings {
		if m.Device == im.Root {
			info.Snapshot, info.VolumeSize = m.Snapshot, m.Size
		}
	}
	return info, true
}

// powerOff is the guest powering off at t: the instance stops.
func (in *instance) powerOff(t time.Time, delay time.Duration) {
	in.State, in.next, in.changeAt = "stopping", "stopped", t.Add(delay)
	in.Reason = "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
}

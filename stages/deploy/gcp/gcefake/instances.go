package gcefake

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

type instance struct {
	*compute.Instance
	project, zone string
	features      []string // of its image
	guest         Guest
	runningAt     time.Time // when it became RUNNING; zero before
	serial        []byte    // the console output kept (the last SerialBuffer bytes)
	dropped       int64     // bytes of output no longer kept
	released      int       // guest lines written so far
	limit         int       // bytes of console output kept
}

func init() {
	handle("compute.machineTypes.get", "GET", "projects/{project}/zones/{zone}/machineTypes/{machineType}", func(s *Server, r *request) (any, *apiError) {
		path := "projects/" + r.v("project") + "/zones/" + r.v("zone") + "/machineTypes/" + r.v("machineType")
		if e := s.permission("compute.machineTypes.get", path); e != nil {
			return nil, e
		}
		mem, ok := Machines[r.v("machineType")]
		if !ok {
			return nil, notFound(path)
		}
		return &compute.MachineType{Kind: "compute#machineType", Name: r.v("machineType"), MemoryMb: mem, GuestCpus: 2,
			Zone: r.v("zone"), SelfLink: s.selfLink(path)}, nil
	})
	handle("compute.instances.insert", "POST", "projects/{project}/zones/{zone}/instances", (*Server).insertInstance, "requestId", "sourceInstanceTemplate", "sourceMachineImage")
	handle("compute.instances.get", "GET", "projects/{project}/zones/{zone}/instances/{instance}", func(s *Server, r *request) (any, *apiError) {
		inst, e := s.instance(r, "compute.instances.get")
		if e != nil {
			return nil, e
		}
		return inst.Instance, nil
	})
	handle("compute.instances.delete", "DELETE", "projects/{project}/zones/{zone}/instances/{instance}", func(s *Server, r *request) (any, *apiError) {
		inst, e := s.instance(r, "compute.instances.delete")
		if e != nil {
			return nil, e
		}
		if o, dup, e := s.requestID(r); dup || e != nil {
			return o, e
		}
		path := resourcePath(inst.SelfLink)
		inst.Status = "STOPPING"
		return s.newOperation(r, inst.project, inst.zone, "delete", path, func() *compute.OperationError {
			delete(s.instances, inst.project+"/"+inst.zone+"/"+inst.Name)
			return nil
		}, nil), nil
	}, "requestId")
	handle("compute.instances.getSerialPortOutput", "GET", "projects/{project}/zones/{zone}/instances/{instance}/serialPort", (*Server).serialPort, "port", "start")
	handle("compute.instances.list", "GET", "projects/{project}/zones/{zone}/instances", func(s *Server, r *request) (any, *apiError) {
		if e := s.permission("compute.instances.list", "projects/"+r.v("project")+"/zones/"+r.v("zone")); e != nil {
			return nil, e
		}
		match, e := parseFilter(r.URL.Query().Get("filter"))
		if e != nil {
			return nil, e
		}
		l := &compute.InstanceList{Kind: "compute#instanceList", Items: []*compute.Instance{}}
		for _, inst := range s.sortedInstances() {
			if inst.project == r.v("project") && inst.zone == r.v("zone") && match(inst.Labels) {
				l.Items = append(l.Items, inst.Instance)
			}
		}
		return l, nil
	}, "filter", "maxResults", "orderBy", "pageToken", "returnPartialSuccess")
	handle("compute.instances.aggregatedList", "GET", "projects/{project}/aggregated/instances", func(s *Server, r *request) (any, *apiError) {
		if e := s.permission("compute.instances.list", "projects/"+r.v("project")); e != nil {
			return nil, e
		}
		match, e := parseFilter(r.URL.Query().Get("filter"))
		if e != nil {
			return nil, e
		}
		l := &compute.InstanceAggregatedList{Kind: "compute#instanceAggregatedList", Items: map[string]compute.InstancesScopedList{}}
		for _, z := range s.o.Zones {
			var items []*compute.Instance
			for _, inst := range s.sortedInstances() {
				if inst.project == r.v("project") && inst.zone == z && match(inst.Labels) {
					items = append(items, inst.Instance)
				}
			}
			sl := compute.InstancesScopedList{Instances: items}
			if len(items) == 0 {
				sl.Warning = &compute.InstancesScopedListWarning{Code: "NO_RESULTS_ON_PAGE", Message: "There are no results for scope 'zones/" + z + "' on this page."}
			}
			l.Items["zones/"+z] = sl
		}
		return l, nil
	}, "filter", "includeAllScopes", "maxResults", "orderBy", "pageToken", "returnPartialSuccess", "serviceProjectNumber")
}

func (s *Server) sortedInstances() []*instance {
	var out []*instance
	for _, i := range s.instances {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b *instance) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// instance is the instance a call names, checked against perm.
func (s *Server) instance(r *request, perm string) (*instance, *apiError) {
	path := "projects/" + r.v("project") + "/zones/" + r.v("zone") + "/instances/" + r.v("instance")
	if e := s.permission(perm, path); e != nil {
		return nil, e
	}
	inst := s.instances[r.v("project")+"/"+r.v("zone")+"/"+r.v("instance")]
	if inst == nil {
		return nil, notFound(path)
	}
	s.advance(inst)
	return inst, nil
}

var (
	machineTypeRe = regexp.MustCompile(`(?:^|/)zones/([^/]+)/machineTypes/([^/]+)$`)
	imageRe       = regexp.MustCompile(`(?:^|/)(?:projects/([^/]+)/)?global/images/([^/]+)$`)
	networkRe     = regexp.MustCompile(`(?:^|/)(?:projects/([^/]+)/)?global/networks/([^/]+)$`)
	tagRe         = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

func (s *Server) insertInstance(r *request) (any, *apiError) {
	project, zone := r.v("project"), r.v("zone")
	var in compute.Instance
	if e := decode(r, &in); e != nil {
		return nil, e
	}
	if e := checkName("resource.name", in.Name); e != nil {
		return nil, e
	}
	path := "projects/" + project + "/zones/" + zone + "/instances/" + in.Name
	perms := []string{"compute.instances.create", "compute.disks.create", "compute.images.useReadOnly", "compute.subnetworks.use"}
	if len(in.Labels) > 0 {
		perms = append(perms, "compute.instances.setLabels")
	}
	if in.Metadata != nil && len(in.Metadata.Items) > 0 {
		perms = append(perms, "compute.instances.setMetadata")
	}
	if in.Tags != nil && len(in.Tags.Items) > 0 {
		perms = append(perms, "compute.instances.setTags")
	}
	for _, n := range in.NetworkInterfaces {
		if len(n.AccessConfigs) > 0 {
			perms = append(perms, "compute.subnetworks.useExternalIp")
		}
	}
	for _, p := range perms {
		if e := s.permission(p, path); e != nil {
			return nil, e
		}
	}
	if o, dup, e := s.requestID(r); dup || e != nil {
		return o, e
	}
	key := project + "/" + zone + "/" + in.Name
	if s.instances[key] != nil {
		return nil, newError(409, "alreadyExists", "The resource '%s' already exists", path)
	}
	m := machineTypeRe.FindStringSubmatch(in.MachineType)
	switch {
	case in.MachineType == "":
		return nil, newError(400, "required", "Required field 'resource.machineType' not specified")
	case m == nil:
		return nil, invalid("resource.machineType", "'%s'. The URL is malformed.", in.MachineType)
	case m[1] != zone:
		return nil, invalid("resource.machineType", "'%s'. Machine type zone %s does not match the instance's zone %s.", in.MachineType, m[1], zone)
	case Machines[m[2]] == 0:
		return nil, invalid("resource.machineType", "'%s'. Machine type with name '%s' does not exist in zone '%s'.", in.MachineType, m[2], zone)
	}
	if e := checkLabels("resource.labels", in.Labels); e != nil {
		return nil, e
	}
	if in.Tags != nil {
		for _, t := range in.Tags.Items {
			if !tagRe.MatchString(t) {
				return nil, invalid("resource.tags.items", "'%s'. Tags must be RFC1035 labels", t)
			}
		}
	}
	if in.Metadata != nil {
		for _, it := range in.Metadata.Items {
			if it.Key == "" || it.Value == nil {
				return nil, invalid("resource.metadata.items", "every item needs a key and a value")
			}
		}
	}
	// Exactly one boot disk, made from a READY image.
	var boot *compute.AttachedDisk
	for i, d := range in.Disks {
		if d.Boot {
			if boot != nil {
				return nil, invalid(fmt.Sprintf("resource.disks[%d].boot", i), "only one disk can be the boot disk")
			}
			boot = d
		}
	}
	if boot == nil {
		return nil, newError(400, "required", "Invalid value for field 'resource.disks': ''. Boot disk must be specified.")
	}
	if boot.InitializeParams == nil || boot.InitializeParams.SourceImage == "" {
		return nil, newError(400, "required", "Required field 'resource.disks[0].initializeParams.sourceImage' not specified")
	}
	im := imageRe.FindStringSubmatch(resourcePath(boot.InitializeParams.SourceImage))
	if im == nil {
		return nil, invalid("resource.disks[0].initializeParams.sourceImage", "'%s'. The URL is malformed.", boot.InitializeParams.SourceImage)
	}
	imgProject := im[1]
	if imgProject == "" {
		imgProject = project
	}
	imgPath := "projects/" + imgProject + "/global/images/" + im[2]
	img := s.images[imgProject+"/"+im[2]]
	if img == nil {
		return nil, notFound(imgPath)
	}
	if img.Status != "READY" {
		return nil, newError(400, "resourceNotReady", "The resource '%s' is not ready", imgPath)
	}
	if gb := boot.InitializeParams.DiskSizeGb; gb != 0 && gb < img.DiskSizeGb {
		return nil, invalid("resource.disks[0].initializeParams.diskSizeGb", "Requested disk size cannot be smaller than the image size (%d GB)", img.DiskSizeGb)
	}
	if e := checkLabels("resource.disks[0].initializeParams.labels", boot.InitializeParams.Labels); e != nil {
		return nil, e
	}
	var features []string
	for _, f := range img.GuestOsFeatures {
		features = append(features, f.Type)
	}
	if sc := in.ShieldedInstanceConfig; sc != nil && sc.EnableSecureBoot && !slices.Contains(features, "UEFI_COMPATIBLE") {
		return nil, newError(400, "invalid", "Secure Boot requires a UEFI_COMPATIBLE image; '%s' is not", imgPath)
	}
	if len(in.NetworkInterfaces) == 0 {
		return nil, newError(400, "required", "Required field 'resource.networkInterfaces' not specified")
	}
	n := len(s.instances) + s.seq
	for i, nic := range in.NetworkInterfaces {
		nm := networkRe.FindStringSubmatch(resourcePath(nic.Network))
		if nic.Network == "" && nic.Subnetwork == "" {
			return nil, newError(400, "required", "Required field 'resource.networkInterfaces[%d].network' not specified", i)
		}
		if nic.Network != "" && (nm == nil || nm[2] != "default") {
			return nil, notFound(resourcePath(nic.Network))
		}
		if nic.Subnetwork != "" {
			return nil, notFound(resourcePath(nic.Subnetwork))
		}
		switch nic.NicType {
		case "", "VIRTIO_NET":
		case "GVNIC":
			if !slices.Contains(features, "GVNIC") {
				return nil, invalid(fmt.Sprintf("resource.networkInterfaces[%d].nicType", i), "'GVNIC'. The image '%s' does not support gVNIC (guest OS feature GVNIC)", imgPath)
			}
		default:
			return nil, invalid(fmt.Sprintf("resource.networkInterfaces[%d].nicType", i), "'%s'", nic.NicType)
		}
		nic.Network = s.selfLink("projects/" + project + "/global/networks/default")
		nic.NetworkIP = fmt.Sprintf("10.132.0.%d", 2+n%250)
		nic.Name = "nic" + strconv.Itoa(i)
		for j, ac := range nic.AccessConfigs {
			if ac.Type != "ONE_TO_ONE_NAT" {
				return nil, invalid(fmt.Sprintf("resource.networkInterfaces[%d].accessConfigs[%d].type", i, j), "'%s'", ac.Type)
			}
			// TEST-NET-3: documentation addresses nothing is sent to.
			ac.NatIP = fmt.Sprintf("203.0.113.%d", 1+n%250)
			ac.Kind = "compute#accessConfig"
		}
	}
	stored := &instance{Instance: &in, project: project, zone: zone, features: features, limit: s.o.SerialBuffer}
	in.Kind, in.Id, in.Status = "compute#instance", s.nextID(), "PROVISIONING"
	in.Zone = s.selfLink("projects/" + project + "/zones/" + zone)
	in.MachineType = s.selfLink("projects/" + project + "/zones/" + zone + "/machineTypes/" + m[2])
	in.SelfLink = s.selfLink(path)
	in.CreationTimestamp = s.timestamp()
	boot.Source = s.selfLink("projects/" + project + "/zones/" + zone + "/disks/" + in.Name)
	boot.DeviceName = "persistent-disk-0"
	s.instances[key] = stored
	return s.newOperation(r, project, zone, "insert", path, func() *compute.OperationError {
		stored.Status = "RUNNING"
		stored.runningAt = s.now()
		stored.LastStartTimestamp = s.timestamp()
		stored.guest = s.o.Guest(stored.Instance, features)
		return nil
	}, func() { delete(s.instances, key) }), nil
}

// advance writes the guest's console lines whose time has come and stops
// the instance once its guest has exited.
func (s *Server) advance(inst *instance) {
	if inst.runningAt.IsZero() || inst.Status != "RUNNING" {
		return
	}
	since := s.now().Sub(inst.runningAt)
	for inst.released < len(inst.guest.Lines) && inst.guest.Lines[inst.released].After <= since {
		inst.writeSerial(inst.guest.Lines[inst.released].Text + "\r\n")
		inst.released++
	}
	if inst.released == len(inst.guest.Lines) && inst.guest.Exit != nil {
		inst.writeSerial(fmt.Sprintf("unikfile-init: exit status %d\r\n", *inst.guest.Exit))
		inst.guest.Exit = nil
		inst.Status = "TERMINATED"
		inst.LastStopTimestamp = s.timestamp()
	}
}

func (inst *instance) writeSerial(text string) {
	inst.serial = append(inst.serial, text...)
	if len(inst.serial) > inst.limit {
		cut := len(inst.serial) - inst.limit
		inst.serial = append([]byte(nil), inst.serial[cut:]...)
		inst.dropped += int64(cut)
	}
}

// serialPort is getSerialPortOutput: the output from start (the oldest
// kept byte when start is older; the last -start bytes when negative),
// with next, the position after it.
func (s *Server) serialPort(r *request) (any, *apiError) {
	inst, e := s.instance(r, "compute.instances.getSerialPortOutput")
	if e != nil {
		return nil, e
	}
	if p := r.URL.Query().Get("port"); p != "" && p != "1" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 4 {
			return nil, invalid("port", "'%s'. Must be from 1 to 4", p)
		}
		return &compute.SerialPortOutput{Kind: "compute#serialPortOutput", SelfLink: inst.SelfLink + "/serialPort?port=" + p}, nil
	}
	if inst.Status == "PROVISIONING" || inst.Status == "STAGING" {
		return nil, newError(400, "resourceNotReady", "The resource '%s' is not ready", resourcePath(inst.SelfLink))
	}
	total := inst.dropped + int64(len(inst.serial))
	start := int64(0)
	if v := r.URL.Query().Get("start"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalid("start", "'%s'", v)
		}
		start = n
	}
	if start < 0 {
		start = total + start
	}
	start = min(max(start, inst.dropped), total)
	return &compute.SerialPortOutput{
		Kind: "compute#serialPortOutput", SelfLink: inst.SelfLink + "/serialPort",
		Contents: string(inst.serial[start-inst.dropped:]), Start: start, Next: total,
	}, nil
}

var filterTermRe = regexp.MustCompile(`^\(?\s*labels\.([a-z][a-z0-9_-]*)\s*=\s*("([^"]*)"|([a-z0-9_-]*))\s*\)?$`)

// parseFilter parses the list filters unikfile sends: label equalities
// joined by AND. Anything else is refused, so that the fake never
// silently ignores a condition.
func parseFilter(f string) (func(map[string]string) bool, *apiError) {
	if strings.TrimSpace(f) == "" {
		return func(map[string]string) bool { return true }, nil
	}
	type term struct{ k, v string }
	var terms []term
	for _, part := range strings.Split(f, " AND ") {
		m := filterTermRe.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return nil, invalid("filter", "'%s' (the fake understands labels.KEY = \"VALUE\" joined by AND)", f)
		}
		v := m[3]
		if m[4] != "" {
			v = m[4]
		}
		terms = append(terms, term{m[1], v})
	}
	return func(labels map[string]string) bool {
		for _, t := range terms {
			if labels[t.k] != t.v {
				return false
			}
		}
		return true
	}, nil
}

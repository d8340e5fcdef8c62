package awstest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
)

// AMIs and their snapshots as EC2 shows them.

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

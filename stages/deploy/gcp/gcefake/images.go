package gcefake

import (
	"archive/tar"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

type image struct {
	*compute.Image
	project string
}

const gib = 1 << 30

// guestOSFeatures GCE knows.
var guestOSFeatures = []string{"BARE_METAL_LINUX_COMPATIBLE", "GVNIC", "IDPF", "MULTI_IP_SUBNET", "SECURE_BOOT", "SEV_CAPABLE",
	"SEV_LIVE_MIGRATABLE", "SEV_LIVE_MIGRATABLE_V2", "SEV_SNP_CAPABLE", "SUSPEND_RESUME_COMPATIBLE", "TDX_CAPABLE",
	"UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "WINDOWS"}

func init() {
	handle("compute.images.get", "GET", "projects/{project}/global/images/{image}", func(s *Server, r *request) (any, *apiError) {
		path := "projects/" + r.v("project") + "/global/images/" + r.v("image")
		if e := s.permission("compute.images.get", path); e != nil {
			return nil, e
		}
		img := s.images[r.v("project")+"/"+r.v("image")]
		if img == nil {
			return nil, notFound(path)
		}
		return img.Image, nil
	})
	handle("compute.images.insert", "POST", "projects/{project}/global/images", (*Server).insertImage, "requestId", "forceCreate")
	handle("compute.images.list", "GET", "projects/{project}/global/images", func(s *Server, r *request) (any, *apiError) {
		if e := s.permission("compute.images.list", "projects/"+r.v("project")); e != nil {
			return nil, e
		}
		match, e := parseFilter(r.URL.Query().Get("filter"))
		if e != nil {
			return nil, e
		}
		l := &compute.ImageList{Kind: "compute#imageList", Items: []*compute.Image{}}
		var names []string
		for key, img := range s.images {
			if img.project == r.v("project") && match(img.Labels) {
				names = append(names, key)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			l.Items = append(l.Items, s.images[k].Image)
		}
		return l, nil
	}, "filter", "maxResults", "orderBy", "pageToken", "returnPartialSuccess")
	handle("compute.images.delete", "DELETE", "projects/{project}/global/images/{image}", func(s *Server, r *request) (any, *apiError) {
		project := r.v("project")
		path := "projects/" + project + "/global/images/" + r.v("image")
		if e := s.permission("compute.images.delete", path); e != nil {
			return nil, e
		}
		if o, dup, e := s.requestID(r); dup || e != nil {
			return o, e
		}
		key := project + "/" + r.v("image")
		img := s.images[key]
		if img == nil {
			return nil, notFound(path)
		}
		if img.Status == "PENDING" {
			return nil, newError(400, "resourceNotReady", "The resource '%s' is not ready", path)
		}
		return s.newOperation(r, project, "", "delete", path, func() *compute.OperationError {
			delete(s.images, key)
			return nil
		}, nil), nil
	}, "requestId")
}

func (s *Server) insertImage(r *request) (any, *apiError) {
	project := r.v("project")
	var img compute.Image
	if e := decode(r, &img); e != nil {
		return nil, e
	}
	if e := checkName("resource.name", img.Name); e != nil {
		return nil, e
	}
	path := "projects/" + project + "/global/images/" + img.Name
	if e := s.permission("compute.images.create", path); e != nil {
		return nil, e
	}
	if o, dup, e := s.requestID(r); dup || e != nil {
		return o, e
	}
	key := project + "/" + img.Name
	if s.images[key] != nil {
		return nil, newError(409, "alreadyExists", "The resource '%s' already exists", path)
	}
	if e := checkLabels("resource.labels", img.Labels); e != nil {
		return nil, e
	}
	if img.Architecture != "" && img.Architecture != "X86_64" && img.Architecture != "ARM64" {
		return nil, invalid("resource.architecture", "'%s'", img.Architecture)
	}
	var features []string
	for i, f := range img.GuestOsFeatures {
		if !slices.Contains(guestOSFeatures, f.Type) {
			return nil, invalid(fmt.Sprintf("resource.guestOsFeatures[%d].type", i), "'%s'", f.Type)
		}
		if slices.Contains(features, f.Type) {
			return nil, invalid(fmt.Sprintf("resource.guestOsFeatures[%d].type", i), "'%s' is given twice", f.Type)
		}
		features = append(features, f.Type)
	}
	sources := 0
	if img.SourceDisk != "" || img.SourceImage != "" || img.SourceSnapshot != "" {
		sources++
	}
	if img.RawDisk != nil && img.RawDisk.Source != "" {
		sources++
	}
	if sources != 1 {
		return nil, newError(400, "invalid", "Exactly one of 'rawDisk.source', 'sourceDisk', 'sourceImage' or 'sourceSnapshot' must be specified")
	}
	if img.RawDisk.ContainerType != "" && img.RawDisk.ContainerType != "TAR" {
		return nil, invalid("resource.rawDisk.containerType", "'%s'", img.RawDisk.ContainerType)
	}
	bucket, object, ok := gcsURL(img.RawDisk.Source)
	if !ok {
		return nil, invalid("resource.rawDisk.source", "'%s'. The URL must be of the form https://storage.googleapis.com/BUCKET/OBJECT", img.RawDisk.Source)
	}
	if e := s.permission("storage.objects.get", "b/"+bucket+"/o/"+object); e != nil {
		return nil, e
	}
	stored := &image{Image: &compute.Image{
		Kind: "compute#image", Id: s.nextID(), Name: img.Name, Description: img.Description, Family: img.Family,
		Labels: img.Labels, GuestOsFeatures: img.GuestOsFeatures, Architecture: img.Architecture,
		RawDisk: &compute.ImageRawDisk{Source: img.RawDisk.Source, ContainerType: "TAR"}, SourceType: "RAW",
		Status: "PENDING", CreationTimestamp: s.timestamp(), SelfLink: s.selfLink(path),
		StorageLocations: []string{"eu"},
	}, project: project}
	s.images[key] = stored
	return s.newOperation(r, project, "", "insert", path, func() *compute.OperationError {
		size, archive, err := s.checkArchive(bucket, object, features)
		if err != nil {
			return OpError("INVALID_FIELD_VALUE", fmt.Sprintf("Invalid value for field 'resource.rawDisk.source': '%s'. %v", img.RawDisk.Source, err))
		}
		stored.Status, stored.DiskSizeGb, stored.ArchiveSizeBytes = "READY", size/gib, archive
		return nil
	}, func() { delete(s.images, key) }), nil
}

// gcsURL parses https://storage.googleapis.com/BUCKET/OBJECT.
func gcsURL(u string) (bucket, object string, ok bool) {
	for _, prefix := range []string{"https://storage.googleapis.com/", "https://storage.cloud.google.com/"} {
		if rest, found := strings.CutPrefix(u, prefix); found {
			bucket, object, ok = strings.Cut(rest, "/")
			if o, err := url.PathUnescape(object); err == nil {
				object = o
			}
			return bucket, object, ok && bucket != "" && object != ""
		}
	}
	return "", "", false
}

// checkArchive reads the image archive as GCE's import does: a gzip'd GNU
// tar holding one file, disk.raw, whose size is a whole number of GiB. It
// also checks what booting the disk needs: an MBR boot signature, and a
// GPT for a UEFI_COMPATIBLE image.
func (s *Server) checkArchive(bucket, object string, features []string) (size, archive int64, err error) {
	if s.o.Objects == nil {
		return 0, 0, fmt.Errorf("the fake has no Cloud Storage to read it from")
	}
	rc, err := s.o.Objects(bucket, object)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read gs://%s/%s: %v", bucket, object, err)
	}
	defer rc.Close()
	counted := &countReader{r: rc}
	zr, err := gzip.NewReader(counted)
	if err != nil {
		return 0, 0, fmt.Errorf("the archive is not gzip-compressed: %v", err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return 0, 0, fmt.Errorf("the archive holds no file: %v", err)
	}
	if h.Name != "disk.raw" || h.Typeflag != tar.TypeReg {
		return 0, 0, fmt.Errorf("the archive's file is %q (type %c); it must be disk.raw", h.Name, h.Typeflag)
	}
	if h.Format != tar.FormatGNU {
		return 0, 0, fmt.Errorf("the archive is in tar format %v; it must be GNU tar (tar --format=oldgnu)", h.Format)
	}
	if h.Size <= 0 || h.Size%gib != 0 {
		return 0, 0, fmt.Errorf("disk.raw is %d bytes; its size must be a whole number of GiB", h.Size)
	}
	first := make([]byte, 1024)
	if _, err := io.ReadFull(tr, first); err != nil {
		return 0, 0, fmt.Errorf("reading disk.raw: %v", err)
	}
	if binary.LittleEndian.Uint16(first[510:]) != 0xaa55 {
		return 0, 0, fmt.Errorf("disk.raw has no boot signature (0x55AA at byte 510)")
	}
	if slices.Contains(features, "UEFI_COMPATIBLE") && string(first[512:520]) != "EFI PART" {
		return 0, 0, fmt.Errorf("the image is UEFI_COMPATIBLE but disk.raw has no GPT")
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return 0, 0, fmt.Errorf("reading disk.raw: %v", err)
	}
	if _, err := tr.Next(); err != io.EOF {
		return 0, 0, fmt.Errorf("the archive holds more than disk.raw")
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return 0, 0, fmt.Errorf("the archive is damaged: %v", err)
	}
	return h.Size, counted.n, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

package gcp

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	storage "google.golang.org/api/storage/v1"

	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

// guestOSFeatures are what the image's guest supports: the linux base's
// kernel drives virtio-scsi with several queues and gVNIC (gve), and a
// UEFI disk boots on UEFI firmware.
func guestOSFeatures(img *pack.Image) []*compute.GuestOsFeature {
	f := []*compute.GuestOsFeature{{Type: "VIRTIO_SCSI_MULTIQUEUE"}, {Type: "GVNIC"}}
	if img.Boot == pack.BootUEFI {
		f = append(f, &compute.GuestOsFeature{Type: "UEFI_COMPATIBLE"})
	}
	return f
}

// imageTimeout bounds the wait for an image another run is importing.
const imageTimeout = 20 * time.Minute

// ensureImage makes sure the image of the archive exists and is READY:
// an image of the same archive (found by its name, which the digest
// gives) is used again; otherwise the archive is uploaded to the bucket
// and imported, and the staged object removed once the image exists.
func (b *booting) ensureImage(ctx context.Context) error {
	cfg := b.cfg
	deadline := time.Now().Add(imageTimeout)
	for {
		img, err := b.getImage(ctx)
		switch {
		case isNotFound(err):
			created, err := b.importImage(ctx)
			if err != nil || created {
				return err
			}
			// Another run inserted it meanwhile: wait for it as below.
		case err != nil:
			return err
		case img.Status == "READY":
			b.spec.Say("%s: image %s exists; using it", b.app, cfg.Image)
			return nil
		case img.Status == "FAILED":
			if img.Labels[labelManaged] != managedValue {
				return fmt.Errorf("image %s exists in project %s with status FAILED and was not made by unikfile; delete it (gcloud compute images delete %s --project %s)", cfg.Image, cfg.Project, cfg.Image, cfg.Project)
			}
			b.spec.Say("%s: image %s failed to import before; importing it again", b.app, cfg.Image)
			if err := b.p.deleteImage(ctx, b.svc, cfg); err != nil {
				return err
			}
			continue
		}
		// PENDING: being imported (by another unikfile, or an earlier
		// attempt of this one).
		if time.Now().After(deadline) {
			return fmt.Errorf("image %s is still being imported (status PENDING) after %s; try again later", cfg.Image, imageTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.p.poll()):
		}
	}
}

func (b *booting) getImage(ctx context.Context) (*compute.Image, error) {
	cfg := b.cfg
	var img *compute.Image
	err := retry(ctx, b.p.backoff(), func() (err error) {
		img, err = b.svc.compute.Images.Get(cfg.Project, cfg.Image).Context(ctx).Do()
		return err
	})
	if err != nil && !isNotFound(err) {
		return nil, apiError(op{what: "look for image " + cfg.Image, perm: "compute.images.get", resource: cfg.imagePath()}, err)
	}
	return img, err
}

// importImage uploads the archive and inserts the image; created is
// false when another run inserted the image first.
func (b *booting) importImage(ctx context.Context) (created bool, err error) {
	cfg := b.cfg
	if err := b.ensureBucket(ctx); err != nil {
		return false, err
	}
	if err := b.upload(ctx); err != nil {
		return false, err
	}
	img := b.spec.Image
	res := &compute.Image{
		Name:            cfg.Image,
		Description:     fmt.Sprintf("unikfile image of app %s (%s, %s boot), archive sha256 %s", img.App, img.KernelVersion, img.Boot, img.Digest),
		Architecture:    "X86_64",
		GuestOsFeatures: guestOSFeatures(img),
		Labels: map[string]string{
			labelManaged: managedValue,
			labelDigest:  truncate(strings.ToLower(img.Digest), 63),
			labelApp:     labelValue(img.App),
			labelBoot:    labelValue(img.Boot),
		},
		RawDisk: &compute.ImageRawDisk{Source: "https://storage.googleapis.com/" + cfg.Bucket + "/" + cfg.Object},
	}
	o := op{what: "create image " + cfg.Image, perm: "compute.images.create", resource: cfg.imagePath()}
	b.spec.Say("%s: importing image %s", b.app, cfg.Image)
	rid := requestID()
	var gop *compute.Operation
	err = retry(ctx, b.p.backoff(), func() (err error) {
		gop, err = b.svc.compute.Images.Insert(cfg.Project, res).RequestId(rid).Context(ctx).Do()
		return err
	})
	if isConflict(err) {
		return false, b.dropObject(ctx)
	}
	if err != nil {
		return false, apiError(o, err)
	}
	b.undo("delete image "+cfg.Image, func(ctx context.Context) error { return b.p.deleteImage(ctx, b.svc, cfg) })
	if err := b.p.waitGlobal(ctx, b.svc.compute, cfg.Project, gop, o.what); err != nil {
		return true, err
	}
	return true, b.dropObject(ctx)
}

// dropObject removes the staged archive once the image exists; a failure
// is only a warning (Stop removes it again).
func (b *booting) dropObject(ctx context.Context) error {
	if err := b.p.deleteObject(ctx, b.svc, b.cfg); err != nil {
		b.spec.Say("%s: warning: %v (unikfile down removes it)", b.app, err)
	}
	return nil
}

// ensureBucket creates the bucket, in the zone's region, when asked to and
// it is missing.
func (b *booting) ensureBucket(ctx context.Context) error {
	if !b.s.CreateBucket {
		return nil
	}
	cfg := b.cfg
	_, err := b.svc.storage.Buckets.Get(cfg.Bucket).Context(ctx).Do()
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return apiError(op{what: "look for bucket " + cfg.Bucket, perm: "storage.buckets.get", resource: "bucket " + cfg.Bucket}, err)
	}
	loc := strings.ToUpper(region(cfg.Zone))
	b.spec.Say("%s: creating bucket gs://%s in %s", b.app, cfg.Bucket, loc)
	_, err = b.svc.storage.Buckets.Insert(cfg.Project, &storage.Bucket{
		Name:     cfg.Bucket,
		Location: loc,
		IamConfiguration: &storage.BucketIamConfiguration{
			UniformBucketLevelAccess: &storage.BucketIamConfigurationUniformBucketLevelAccess{Enabled: true},
		},
		Labels: map[string]string{labelManaged: managedValue},
	}).Context(ctx).Do()
	if err != nil {
		return apiError(op{what: "create bucket " + cfg.Bucket, perm: "storage.buckets.create", resource: "project " + cfg.Project}, err)
	}
	b.undo("delete bucket "+cfg.Bucket, func(ctx context.Context) error {
		err := b.svc.storage.Buckets.Delete(cfg.Bucket).Context(ctx).Do()
		if err == nil || isNotFound(err) {
			return nil
		}
		return apiError(op{what: "delete bucket " + cfg.Bucket, perm: "storage.buckets.delete", resource: "bucket " + cfg.Bucket}, err)
	})
	return nil
}

// upload copies the archive to the bucket with a resumable upload in
// chunks (each retried on its own), checked end to end with its CRC32C.
func (b *booting) upload(ctx context.Context) error {
	cfg := b.cfg
	path := filepath.Join(b.spec.ImageDir, b.spec.Image.Disk)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image archive: %w; rebuild the image", err)
	}
	defer f.Close()
	sum := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	size, err := io.Copy(sum, f)
	if err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	o := op{what: fmt.Sprintf("upload the image archive to gs://%s/%s", cfg.Bucket, cfg.Object), perm: "storage.objects.create", resource: "bucket " + cfg.Bucket}
	b.spec.Say("%s: uploading the image archive (%.1f MiB) to gs://%s/%s", b.app, float64(size)/(1<<20), cfg.Bucket, cfg.Object)
	// The object's name is the image's: writing it again writes the same
	// bytes, so every attempt may be retried (the session's start here;
	// each chunk is retried by the client on its own).
	progress := deploy.UploadProgress(size, func(f string, a ...any) { b.spec.Say(b.app+": "+f, a...) })
	var crc [4]byte
	binary.BigEndian.PutUint32(crc[:], sum.Sum32())
	b.undo("delete gs://"+cfg.Bucket+"/"+cfg.Object, func(ctx context.Context) error { return b.p.deleteObject(ctx, b.svc, cfg) })
	_, err = b.svc.storage.Objects.Insert(cfg.Bucket, &storage.Object{
		Name:        cfg.Object,
		ContentType: "application/gzip",
		Crc32c:      base64.StdEncoding.EncodeToString(crc[:]),
		Metadata:    map[string]string{"unikfile-image": cfg.Image},
	}).Media(f, googleapi.ChunkSize(b.p.uploadChunk(size)), googleapi.ContentType("application/gzip")).
		ProgressUpdater(func(sent, _ int64) { progress(sent) }).
		WithRetry(nil, nil).Context(ctx).Do()
	if err != nil {
		return b.uploadError(o, err)
	}
	return nil
}

func (b *booting) uploadError(o op, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%s: bucket %s does not exist (or is not visible to these credentials); create it (gcloud storage buckets create gs://%s --project %s --location %s), or set create_bucket = true in the gcp block",
			o.what, b.cfg.Bucket, b.cfg.Bucket, b.cfg.Project, region(b.cfg.Zone))
	}
	return apiError(o, err)
}

// uploadChunk is the chunk size of a resumable upload of size bytes: at
// least two chunks (so the upload is resumable, not one request) of a
// multiple of 256 KiB, at most ChunkSize.
func (p *Provider) uploadChunk(size int64) int {
	const unit = 256 << 10
	c := int64(p.chunkSize())
	if half := size / 2 / unit * unit; half < c {
		c = half
	}
	return int(max(c, unit))
}

// deleteObject removes the staged archive; one that is gone is not an
// error.
func (p *Provider) deleteObject(ctx context.Context, svc *services, cfg Config) error {
	if cfg.Bucket == "" || cfg.Object == "" {
		return nil
	}
	err := svc.storage.Objects.Delete(cfg.Bucket, cfg.Object).Context(ctx).Do()
	if err == nil || isNotFound(err) {
		return nil
	}
	return apiError(op{what: fmt.Sprintf("delete the staged archive gs://%s/%s", cfg.Bucket, cfg.Object), perm: "storage.objects.delete", resource: "bucket " + cfg.Bucket}, err)
}

// deleteStaged removes a staged archive a boot could not remove, unless
// its image is being imported now (by another boot, which removes it).
func (p *Provider) deleteStaged(ctx context.Context, svc *services, cfg Config) error {
	if cfg.Bucket == "" || cfg.Object == "" {
		return nil
	}
	var img *compute.Image
	err := retry(ctx, p.backoff(), func() (err error) {
		img, err = svc.compute.Images.Get(cfg.Project, cfg.Image).Context(ctx).Do()
		return err
	})
	switch {
	case err == nil && img.Status == "PENDING":
		return nil
	case err != nil && !isNotFound(err):
		return apiError(op{what: "look for image " + cfg.Image, perm: "compute.images.get", resource: cfg.imagePath()}, err)
	}
	return p.deleteObject(ctx, svc, cfg)
}

// deleteImage deletes the image and waits; one that is gone is not an
// error.
func (p *Provider) deleteImage(ctx context.Context, svc *services, cfg Config) error {
	o := op{what: "delete image " + cfg.Image, perm: "compute.images.delete", resource: cfg.imagePath()}
	rid := requestID()
	var gop *compute.Operation
	deadline := time.Now().Add(imageTimeout)
	err := retry(ctx, p.backoff(), func() (err error) {
		for {
			gop, err = svc.compute.Images.Delete(cfg.Project, cfg.Image).RequestId(rid).Context(ctx).Do()
			// An image still being imported cannot be deleted yet.
			if !notReady(err) || time.Now().After(deadline) {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(p.poll()):
			}
		}
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return apiError(o, err)
	}
	return p.waitGlobal(ctx, svc.compute, cfg.Project, gop, o.what)
}

// deleteImageIfUnused deletes the image unless an instance other than
// except boots it (instances are labelled with their image, in every
// zone); deleted says it did.
func (p *Provider) deleteImageIfUnused(ctx context.Context, svc *services, cfg Config, except string) (deleted bool, err error) {
	if cfg.Image == "" {
		return false, nil
	}
	filter := fmt.Sprintf("labels.%s = %q", labelImage, cfg.Image)
	used := false
	err = retry(ctx, p.backoff(), func() error {
		used = false
		return svc.compute.Instances.AggregatedList(cfg.Project).Filter(filter).Context(ctx).Pages(ctx, func(l *compute.InstanceAggregatedList) error {
			for _, scoped := range l.Items {
				for _, gi := range scoped.Instances {
					if gi.Name != except {
						used = true
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		return false, apiError(op{what: "find the instances that use image " + cfg.Image, perm: "compute.instances.list", resource: "projects/" + cfg.Project}, err)
	}
	if used {
		return false, nil
	}
	return true, p.deleteImage(ctx, svc, cfg)
}

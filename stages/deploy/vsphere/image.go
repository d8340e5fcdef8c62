package vsphere

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmware/govmomi/vmdk"

	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

// Images live on the datastore in a folder named by their digest, so that
// every instance of one image, in any project, uses one upload:
//
//	unikfile-images/<digest>/disk.vmdk       descriptor (createType vmfs)
//	unikfile-images/<digest>/disk-flat.vmdk  the disk's plain bytes
//	unikfile-images/<digest>/image.json      written last: the image is complete
//
// The streamOptimized VMDK is decoded here and sent as the flat extent
// (the datastore's file service takes any file; only a flat extent is a
// disk ESXi opens and CopyVirtualDisk copies), to a temporary name that
// is moved into place once its size checks out.

const imagesDir = "unikfile-images"

// imageFiles are the datastore files of one image.
type imageFiles struct {
	dir, desc, flat, marker dsFile
}

func imageOn(f dsFile, digest string) imageFiles {
	dir := path.Join(imagesDir, digest)
	at := func(name string) dsFile { g := f; g.Path = path.Join(dir, name); return g }
	return imageFiles{dir: at(""), desc: at("disk.vmdk"), flat: at("disk-flat.vmdk"), marker: at("image.json")}
}

// imageMarker is image.json.
type imageMarker struct {
	Digest   string    `json:"digest"`
	Bytes    int64     `json:"bytes"` // of the flat extent
	Uploaded time.Time `json:"uploaded"`
}

// localImage is the VMDK to upload, checked against its digest.
type localImage struct {
	path     string
	digest   string
	capacity int64 // bytes of the disk
}

// openImage checks that the image's VMDK is a streamOptimized extent whose
// sha256 is the image's digest (a damaged cache entry must not become a
// datastore image named by that digest).
func openImage(imageDir string, img *pack.Image) (*localImage, error) {
	if img.Disk == "" {
		return nil, fmt.Errorf("image of app %s is %q, not a disk: the vsphere provider boots format \"vmdk\"", img.App, img.Format)
	}
	p := filepath.Join(imageDir, img.Disk)
	sum, size, err := pack.FileDigest(p)
	if err != nil {
		return nil, fmt.Errorf("image file: %w; rebuild the image", err)
	}
	if sum != img.Digest {
		return nil, fmt.Errorf("image file %s has digest %.12s, its image.json says %.12s: the cache entry is damaged; remove %s and run up again", p, sum, img.Digest, imageDir)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := newStreamReader(f, size)
	if err != nil {
		return nil, fmt.Errorf("image file %s: %w", p, err)
	}
	return &localImage{path: p, digest: sum, capacity: r.Size()}, nil
}

// open returns a reader of the disk's plain bytes.
func (l *localImage) open() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := newStreamReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image file %s: %w", l.path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// descriptor is the flat disk's descriptor, naming the extent flat.
func (l *localImage) descriptor(flat string) []byte {
	d := vmdk.NewDescriptor(vmdk.Extent{Size: l.capacity / sectorSize, Info: flat})
	id, _ := hex.DecodeString(l.digest[:8])
	d.CID = vmdk.DiskContentID(uint32(id[0])<<24 | uint32(id[1])<<16 | uint32(id[2])<<8 | uint32(id[3]))
	d.ParentCID = 0xffffffff
	cyl := l.capacity / (255 * 63 * sectorSize)
	d.DDB["adapterType"] = "lsilogic"
	d.DDB["geometry.cylinders"] = fmt.Sprint(max(cyl, 1))
	d.DDB["geometry.heads"] = "255"
	d.DDB["geometry.sectors"] = "63"
	d.DDB["virtualHWVersion"] = "10"
	var b strings.Builder
	_ = d.Write(&b)
	return []byte(b.String())
}

// ensureImage puts the image on the datastore unless it is there, and
// returns its descriptor. say gets progress lines.
func (p *Provider) ensureImage(ctx context.Context, on dsFile, l *localImage, say func(string, ...any)) (dsFile, error) {
	unlock := p.lockImage(l.digest)
	defer unlock()
	img := imageOn(on, l.digest)
	if ok, err := p.imageComplete(ctx, img, l); err != nil {
		return dsFile{}, err
	} else if ok {
		say("image %.12s is already on %s", l.digest, img.dir)
		return img.desc, nil
	}
	// An image folder without its marker is an upload that died: start over.
	if err := img.dir.remove(ctx); err != nil {
		return dsFile{}, err
	}
	if err := img.dir.mkdir(ctx); err != nil {
		return dsFile{}, err
	}
	fail := func(err error) (dsFile, error) {
		// Nothing of a failed upload stays, whatever happened to ctx.
		_ = img.dir.remove(context.WithoutCancel(ctx))
		return dsFile{}, err
	}
	staging := img.flat
	staging.Path = path.Join(img.dir.Path, "upload-"+randomHex(4)+"-flat.vmdk")
	say("uploading image %.12s to %s (%s)", l.digest, img.dir, deploy.MiB(l.capacity))
	var open io.ReadCloser
	reopen := func() (io.Reader, error) {
		if open != nil {
			open.Close()
		}
		var err error
		open, err = l.open()
		return open, err
	}
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	err := staging.upload(ctx, l.capacity, reopen, p.attempts(), p.retryDelay(), deploy.UploadProgress(l.capacity, say))
	if err != nil {
		return fail(err)
	}
	if err := staging.move(ctx, img.flat); err != nil {
		return fail(err)
	}
	desc := l.descriptor(path.Base(img.flat.Path))
	if err := img.desc.upload(ctx, int64(len(desc)), bytesOpener(desc), p.attempts(), p.retryDelay(), nil); err != nil {
		return fail(err)
	}
	m, _ := json.Marshal(imageMarker{Digest: l.digest, Bytes: l.capacity, Uploaded: time.Now().UTC()})
	if err := img.marker.upload(ctx, int64(len(m)), bytesOpener(m), p.attempts(), p.retryDelay(), nil); err != nil {
		return fail(err)
	}
	say("image %.12s uploaded", l.digest)
	return img.desc, nil
}

// imageComplete says whether the image is on the datastore whole: its
// marker names its digest and the flat extent has the disk's size.
func (p *Provider) imageComplete(ctx context.Context, img imageFiles, l *localImage) (bool, error) {
	b, err := img.marker.readFrom(ctx, 0)
	if errors.Is(err, errNoFile) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var m imageMarker
	if json.Unmarshal(b, &m) != nil || m.Digest != l.digest || m.Bytes != l.capacity {
		return false, nil
	}
	n, err := img.flat.size(ctx)
	if errors.Is(err, errNoFile) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := img.desc.size(ctx); err != nil {
		return false, nil
	}
	return n == l.capacity, nil
}

// lockImage serializes this process's uploads of one image.
func (p *Provider) lockImage(digest string) func() {
	p.mu.Lock()
	if p.imageLocks == nil {
		p.imageLocks = map[string]chan struct{}{}
	}
	ch, ok := p.imageLocks[digest]
	if !ok {
		ch = make(chan struct{}, 1)
		p.imageLocks[digest] = ch
	}
	p.mu.Unlock()
	ch <- struct{}{}
	return func() { <-ch }
}

func bytesOpener(b []byte) func() (io.Reader, error) {
	return func() (io.Reader, error) { return strings.NewReader(string(b)), nil }
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

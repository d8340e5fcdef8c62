package libvirt

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// pool is a storage pool whose volumes are files (dir, fs, netfs): kernels
// and console logs must be files QEMU and virtlogd open by path.
type pool struct {
	c    *conn
	p    golibvirt.StoragePool
	name string
	dir  string // its target path, where its volumes are
}

// fileBackedPools are the pool types whose volumes are files.
var fileBackedPools = []string{"dir", "fs", "netfs"}

func openPool(c *conn, name string) (*pool, error) {
	p, err := c.StoragePoolLookupByName(name)
	if lverr(err) == golibvirt.ErrNoStoragePool {
		return nil, fmt.Errorf("libvirt at %s has no storage pool %q; create one (virsh pool-define-as %s dir --target /var/lib/libvirt/images && virsh pool-build %s && virsh pool-start %s && virsh pool-autostart %s), or set pool in the target's libvirt block to one of virsh pool-list --all", c.raw, name, name, name, name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	}
	active, err := c.StoragePoolIsActive(p)
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	}
	if active == 0 {
		return nil, fmt.Errorf("storage pool %q on %s is not active; start it: virsh pool-start %s (and virsh pool-autostart %s)", name, c.raw, name, name)
	}
	desc, err := c.StoragePoolGetXMLDesc(p, 0)
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	}
	var px libvirtxml.StoragePool
	if err := px.Unmarshal(desc); err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	}
	if !slices.Contains(fileBackedPools, px.Type) {
		return nil, fmt.Errorf("storage pool %q on %s is of type %s; unikfile needs a pool whose volumes are files (%s) for kernels, disks and console logs: create one (virsh pool-define-as unikfile dir --target /var/lib/libvirt/images/unikfile && virsh pool-build unikfile && virsh pool-start unikfile) and set pool = \"unikfile\"", name, c.raw, px.Type, strings.Join(fileBackedPools, ", "))
	}
	dir := ""
	if px.Target != nil {
		dir = px.Target.Path
	}
	return &pool{c: c, p: p, name: name, dir: dir}, nil
}

// lookup finds the volume called name; ok is false when there is none.
func (p *pool) lookup(name string) (golibvirt.StorageVol, bool, error) {
	v, err := p.c.StorageVolLookupByName(p.p, name)
	if lverr(err) == golibvirt.ErrNoStorageVol {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("volume %s in pool %s: %w", name, p.name, err)
	}
	return v, true, nil
}

// physical is the size of the volume's file.
func (p *pool) physical(v golibvirt.StorageVol) (uint64, error) {
	_, _, alloc, err := p.c.StorageVolGetInfoFlags(v, uint32(golibvirt.StorageVolGetPhysical))
	return alloc, err
}

func (p *pool) path(v golibvirt.StorageVol) (string, error) {
	path, err := p.c.StorageVolGetPath(v)
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", v.Name, err)
	}
	return path, nil
}

// create makes an empty volume (a raw file of capacity bytes) or, with a
// backing file, a qcow2 overlay of it.
func (p *pool) create(name string, capacity uint64, backing, backingFormat string) (golibvirt.StorageVol, error) {
	vx := libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: capacity, Unit: "B"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
	}
	if backing != "" {
		vx.Target.Format.Type = "qcow2"
		vx.BackingStore = &libvirtxml.StorageVolumeBackingStore{
			Path: backing, Format: &libvirtxml.StorageVolumeTargetFormat{Type: backingFormat},
		}
	}
	doc, err := vx.Marshal()
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	v, err := p.c.StorageVolCreateXML(p.p, doc, 0)
	if err != nil {
		return v, fmt.Errorf("create volume %s in pool %s: %w", name, p.name, err)
	}
	return v, nil
}

// remove deletes the volume called name; a volume that is not there is
// not an error.
func (p *pool) remove(name string) error {
	v, ok, err := p.lookup(name)
	if err != nil || !ok {
		return err
	}
	if err := p.c.StorageVolDelete(v, golibvirt.StorageVolDeleteNormal); err != nil && lverr(err) != golibvirt.ErrNoStorageVol {
		return fmt.Errorf("delete volume %s from pool %s: %w", name, p.name, err)
	}
	return nil
}

// read returns the volume's bytes from off to its end (see conn.download).
// It asks for the exact length: a download "to the end" races more often.
func (p *pool) read(v golibvirt.StorageVol, off uint64) ([]byte, error) {
	n, err := p.physical(v)
	if err != nil || n <= off {
		return nil, err
	}
	return p.c.download(v, off, n-off)
}

// imageVolume is one file of an image as a volume: named by the file's
// sha256, so every image that holds the same kernel shares one.
type imageVolume struct {
	Name string
	File string // on this host
	Size int64
	// Kind is what it is: kernel, initrd, or the disk's format.
	Kind string
}

// uploadStall is how long an incomplete volume may go without growing
// before it is taken for the leftover of an interrupted upload.
const uploadStall = 20 * time.Second

// ensure makes sure the volume holds the file, uploading it through the
// connection (StorageVolUpload) when it is missing or incomplete. created
// says whether this call wrote it. A volume of the right size is
// complete: uploads write it front to back.
func (p *pool) ensure(ctx context.Context, iv imageVolume, say func(string, ...any)) (path string, created bool, err error) {
	v, ok, err := p.lookup(iv.Name)
	if err != nil {
		return "", false, err
	}
	if ok {
		complete, err := p.waitComplete(ctx, v, uint64(iv.Size))
		if err != nil {
			return "", false, err
		}
		if complete {
			path, err := p.path(v)
			return path, false, err
		}
		say("volume %s in pool %s is incomplete (an interrupted upload); uploading it again", iv.Name, p.name)
		if err := p.remove(iv.Name); err != nil {
			return "", false, err
		}
	}
	v, err = p.create(iv.Name, 0, "", "")
	if err != nil {
		return "", false, err
	}
	if err := p.upload(ctx, v, iv, say); err != nil {
		return "", true, err
	}
	path, err = p.path(v)
	return path, true, err
}

// waitComplete says whether v has size bytes, waiting while another upload
// still makes it grow.
func (p *pool) waitComplete(ctx context.Context, v golibvirt.StorageVol, size uint64) (bool, error) {
	last, lastChange := uint64(0), time.Now()
	for {
		n, err := p.physical(v)
		if err != nil {
			return false, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if n == size {
			return true, nil
		}
		if n > size {
			return false, nil
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > uploadStall {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// upload streams the file into v, with progress lines on a slow upload.
func (p *pool) upload(ctx context.Context, v golibvirt.StorageVol, iv imageVolume, say func(string, ...any)) error {
	f, err := os.Open(iv.File)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	say("uploading %s (%s) into pool %s as %s", iv.Kind, mib(iv.Size), p.name, iv.Name)
	pr := &progressReader{r: f, total: iv.Size, every: 2 * time.Second, last: start,
		say: func(n int64) { say("uploading %s: %s of %s", iv.Kind, mib(n), mib(iv.Size)) }}
	if err := p.c.StorageVolUpload(v, pr, 0, uint64(iv.Size), 0); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("upload %s into volume %s of pool %s: %w", iv.File, iv.Name, p.name, err)
	}
	n, err := p.physical(v)
	if err != nil {
		return err
	}
	if n != uint64(iv.Size) {
		return fmt.Errorf("upload %s into volume %s of pool %s: the volume has %d bytes, the file %d", iv.File, iv.Name, p.name, n, iv.Size)
	}
	d := time.Since(start)
	say("uploaded %s in %s (%.1f MiB/s)", iv.Kind, d.Round(10*time.Millisecond), float64(iv.Size)/(1<<20)/max(d.Seconds(), 0.001))
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progressReader reports how much was read, at most every `every`.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	every time.Duration
	last  time.Time
	say   func(n int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if time.Since(p.last) >= p.every && p.n < p.total {
		p.last = time.Now()
		p.say(p.n)
	}
	return n, err
}

// keyedMutex serialises work on one name (a volume) within this process.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// lock takes the locks of names in a fixed order and returns the unlock.
func (k *keyedMutex) lock(names ...string) func() {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	var held []*sync.Mutex
	for _, n := range names {
		k.mu.Lock()
		if k.m == nil {
			k.m = map[string]*sync.Mutex{}
		}
		l, ok := k.m[n]
		if !ok {
			l = &sync.Mutex{}
			k.m[n] = l
		}
		k.mu.Unlock()
		l.Lock()
		held = append(held, l)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}
}

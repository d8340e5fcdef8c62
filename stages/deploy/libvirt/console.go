package libvirt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// The serial console's log. libvirtd hands a chardev's log file to
// virtlogd, which writes it and rotates it as virtlogd.conf on the libvirt
// host says (max_size, 2 MiB by default; max_backups, 3): when the file
// reaches max_size it becomes <file>.0, an older .0 becomes .1 and so on,
// the generation past max_backups is dropped, and a new <file> starts. A
// console therefore takes at most (max_backups+1) × max_size in the pool,
// and a line can be split between two generations (virtlogd breaks at a
// newline only if one is among the last 80 bytes before the limit).
//
// The rotated generations are files libvirt did not create: the pool lists
// them as volumes only after a refresh. They are read, like the console
// itself, as volumes (the pool may be on another host), and deleted as
// volumes with it.
//
// Reading a console that virtlogd rotates while it is read is done by a
// consoleReader: it keeps the last bytes it read of the current file, and
// when the file at the console's name is shorter than what it read, or
// does not hold those bytes where it left off, the file was rotated; it
// then finds the generation it was reading by those bytes, reads its rest
// and every newer generation, and goes on in the new current file. A
// guest whose output repeats exactly (the same bytes at the same offsets
// of two generations) can fool that, and output that overtakes the reader
// by more than the generations virtlogd keeps is lost to it.

// anchorLen is how many of the last bytes read a consoleReader compares
// to recognise the file it was reading.
const anchorLen = 256

// consoleHead is how much of the console's start watchesPowerButton reads
// when the instance's record does not say: the init's early markers come
// before the app's output.
const consoleHead = 256 << 10

// errConsoleGone says the console volume is not in the pool any more.
var errConsoleGone = errors.New("the console volume is gone")

// generationName is the name of the n-th newest rotated generation of the
// console volume called name (n from 0), as virtlogd names its files.
func generationName(name string, n int) string { return name + "." + strconv.Itoa(n) }

// refresh makes libvirt rescan the pool's folder (it sees virtlogd's
// renames only then). libvirt refuses while a volume of the pool is being
// built; that is retried for a while.
func (p *pool) refresh() error {
	var err error
	for try := 0; try < 10; try++ {
		if err = p.c.StoragePoolRefresh(p.p, 0); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("refresh storage pool %s: %w", p.name, err)
}

// generations are the rotated generations of the console volume called
// name, oldest first, after a refresh of the pool.
func (p *pool) generations(name string) ([]golibvirt.StorageVol, error) {
	if err := p.refresh(); err != nil {
		return nil, err
	}
	vols, _, err := p.c.StoragePoolListAllVolumes(p.p, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("list the volumes of pool %s: %w", p.name, err)
	}
	type gen struct {
		v golibvirt.StorageVol
		n int
	}
	var gens []gen
	for _, v := range vols {
		rest, ok := strings.CutPrefix(v.Name, name+".")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && generationName(name, n) == v.Name {
			gens = append(gens, gen{v, n})
		}
	}
	slices.SortFunc(gens, func(a, b gen) int { return b.n - a.n })
	out := make([]golibvirt.StorageVol, len(gens))
	for i, g := range gens {
		out[i] = g.v
	}
	return out, nil
}

// removeConsole deletes the console volume called name and its rotated
// generations.
func (p *pool) removeConsole(name string) error {
	gens, gerr := p.generations(name)
	errs := []error{gerr}
	for _, v := range gens {
		if err := p.c.StorageVolDelete(v, golibvirt.StorageVolDeleteNormal); err != nil && lverr(err) != golibvirt.ErrNoStorageVol {
			errs = append(errs, fmt.Errorf("delete volume %s from pool %s: %w", v.Name, p.name, err))
		}
	}
	errs = append(errs, p.remove(name))
	return errors.Join(errs...)
}

// consoleTail is the last max bytes of the console volume called name,
// across its generations; ok is false when there is no such volume.
func (p *pool) consoleTail(name string, max uint64) (b []byte, ok bool, err error) {
	v, ok, err := p.lookup(name)
	if err != nil || !ok {
		return nil, ok, err
	}
	n, err := p.physical(v)
	if err != nil {
		return nil, true, err
	}
	if n >= max {
		b, err := p.read(v, n-max)
		return b, true, err
	}
	gens, err := p.generations(name)
	if err != nil {
		return nil, true, err
	}
	if b, err = p.read(v, 0); err != nil {
		return nil, true, err
	}
	for i := len(gens) - 1; i >= 0 && uint64(len(b)) < max; i-- {
		size, err := p.physical(gens[i])
		if err != nil {
			continue // dropped meanwhile
		}
		want := min(size, max-uint64(len(b)))
		g, err := p.read(gens[i], size-want)
		if err != nil {
			continue
		}
		b = append(g, b...)
	}
	return b, true, nil
}

// consoleHead is the first max bytes of the oldest generation the console
// volume called name still has.
func (p *pool) consoleHead(name string, max uint64) ([]byte, error) {
	gens, err := p.generations(name)
	if err != nil {
		return nil, err
	}
	for _, g := range gens {
		if b, err := p.readRange(g, 0, max); err == nil {
			return b, nil
		}
	}
	v, ok, err := p.lookup(name)
	if err != nil || !ok {
		return nil, err
	}
	return p.readRange(v, 0, max)
}

// readRange reads v from off, at most n bytes.
func (p *pool) readRange(v golibvirt.StorageVol, off, n uint64) ([]byte, error) {
	size, err := p.physical(v)
	if err != nil || size <= off {
		return nil, err
	}
	return p.c.download(v, off, min(n, size-off))
}

// consoleReader reads a console volume that virtlogd rotates, oldest kept
// generation first, each byte once. It is not safe for concurrent use.
type consoleReader struct {
	pl   *pool
	name string

	started bool
	off     uint64 // what was read of the current file
	last    []byte // its last bytes before off, at most anchorLen
}

// next returns what the console got since the last call; the first call
// returns every generation virtlogd kept. It returns errConsoleGone when
// the console volume is not in the pool.
func (r *consoleReader) next() ([]byte, error) {
	if !r.started {
		return r.catchUp(false)
	}
	v, ok, err := r.pl.lookup(r.name)
	if err != nil {
		return nil, err
	}
	if !ok {
		// A refresh between virtlogd's rename and its new file drops the
		// volume from the pool's list; the catch-up refreshes again.
		return r.catchUp(true)
	}
	n, err := r.pl.physical(v)
	if err != nil || n == r.off {
		return nil, nil // between virtlogd's rename and its new file, or nothing new
	}
	if n > r.off {
		from := r.off - uint64(len(r.last))
		b, err := r.pl.c.download(v, from, n-from)
		if err == nil && bytes.Equal(b[:len(r.last)], r.last) {
			b = b[len(r.last):]
			r.advance(b)
			return b, nil
		}
	}
	return r.catchUp(true)
}

func (r *consoleReader) advance(b []byte) {
	r.off += uint64(len(b))
	r.last = append(r.last, b...)
	if len(r.last) > anchorLen {
		r.last = slices.Clone(r.last[len(r.last)-anchorLen:])
	}
}

// readFile is one file of a catch-up: what was read of it, and its end,
// to check that the name still holds it afterwards.
type readFile struct {
	v    golibvirt.StorageVol
	size uint64
	end  []byte
}

// catchUp reads the generations and the current file: with resume, from
// where the reader left off (in the generation that holds the bytes it
// read last, or from the oldest if none does: it was dropped); without,
// all of them. A rotation while it reads shifts the names under it: it
// checks that every generation it read is still where it read it, and
// else reads again.
func (r *consoleReader) catchUp(resume bool) ([]byte, error) {
	for try := 0; ; try++ {
		data, cur, err := r.readAll(resume, try < 3)
		if errors.Is(err, errRotatedMeanwhile) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.started = true
		if cur != nil {
			r.off, r.last = 0, nil
			r.advance(cur)
		} else {
			r.advance(data) // still in the file it was reading
		}
		return data, nil
	}
}

var errRotatedMeanwhile = errors.New("rotated while being read")

// readAll is one try of catchUp. cur is the whole current file, where the
// reader goes on, or nil when the file it was reading is still the
// current one (data then continues it). check says to return
// errRotatedMeanwhile when names shifted while it read.
func (r *consoleReader) readAll(resume, check bool) (data, cur []byte, err error) {
	gens, err := r.pl.generations(r.name)
	if err != nil {
		return nil, nil, err
	}
	v, ok, err := r.pl.lookup(r.name)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		if len(gens) == 0 {
			return nil, nil, errConsoleGone
		}
		if check {
			time.Sleep(50 * time.Millisecond) // virtlogd is starting its new file
			return nil, nil, errRotatedMeanwhile
		}
	}
	files := gens
	if ok {
		files = append(files, v)
	}
	start := 0
	var read []readFile
	if resume {
		start = len(files) // none holds what was read: start at the oldest
		for i := len(files) - 1; i >= 0; i-- {
			if r.holds(files[i]) {
				start = i
				break
			}
		}
		if start == len(files) {
			start = 0
		} else {
			// Its rest, with what was read last, in one download: the
			// same file as the bytes it is recognised by.
			f := files[start]
			size, err := r.pl.physical(f)
			from := r.off - uint64(len(r.last))
			var b []byte
			if err == nil && size > from {
				b, err = r.pl.c.download(f, from, size-from)
			}
			if err != nil || size < r.off || !bytes.Equal(b[:len(r.last)], r.last) {
				if check {
					return nil, nil, errRotatedMeanwhile
				}
				b = r.last
			}
			data = b[len(r.last):]
			if ok && start == len(files)-1 {
				return data, nil, nil // not rotated after all
			}
			read = append(read, readFile{f, size, tailOf(b, anchorLen)})
			start++
		}
	}
	for i := start; i < len(files); i++ {
		b, err := r.pl.read(files[i], 0)
		if err != nil {
			if check {
				return nil, nil, errRotatedMeanwhile
			}
			continue
		}
		if ok && i == len(files)-1 {
			cur = b
			if cur == nil {
				cur = []byte{}
			}
		} else {
			read = append(read, readFile{files[i], uint64(len(b)), tailOf(b, anchorLen)})
		}
		data = append(data, b...)
	}
	if check {
		for _, f := range read {
			end, err := r.pl.readRange(f.v, f.size-uint64(len(f.end)), uint64(len(f.end)))
			if size, serr := r.pl.physical(f.v); err != nil || serr != nil || size != f.size || !bytes.Equal(end, f.end) {
				return nil, nil, errRotatedMeanwhile
			}
		}
	}
	if cur == nil {
		cur = []byte{} // no current file yet: go on from its start
	}
	return data, cur, nil
}

// holds says whether f has the bytes last read at the offset they were
// read at.
func (r *consoleReader) holds(f golibvirt.StorageVol) bool {
	size, err := r.pl.physical(f)
	if err != nil || size < r.off {
		return false
	}
	if len(r.last) == 0 {
		return true
	}
	b, err := r.pl.c.download(f, r.off-uint64(len(r.last)), uint64(len(r.last)))
	return err == nil && bytes.Equal(b, r.last)
}

func tailOf(b []byte, n int) []byte { return slices.Clone(b[len(b)-min(n, len(b)):]) }

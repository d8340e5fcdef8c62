package buildkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
)

// imageFS is the builder image's filesystem as elfdeps reads it: files
// are read from buildkitd through a gateway session, opened on the first
// read (a static program reads nothing, and pulls nothing), and held
// open until Close. The image is immutable, so what was asked once is
// remembered.
type imageFS struct {
	ctx      context.Context
	e        *Executor
	app      *lang.App
	image    string
	progress func(string)

	once     sync.Once
	ready    chan struct{}
	release  chan struct{}
	done     chan error
	err      error
	gctx     context.Context
	ref      gateway.Reference
	mu       sync.Mutex
	stats    map[string]*fstypes.Stat // path -> entry (nil: missing)
	maxBytes int64
}

func newImageFS(ctx context.Context, e *Executor, app *lang.App, image string, progress func(string)) *imageFS {
	return &imageFS{ctx: ctx, e: e, app: app, image: image, progress: progress, stats: map[string]*fstypes.Stat{}, maxBytes: 1 << 30}
}

// open starts the session that holds the image, once.
func (f *imageFS) open() error {
	f.once.Do(func() {
		f.ready = make(chan struct{})
		f.release = make(chan struct{})
		f.done = make(chan error, 1)
		var readyOnce sync.Once
		signal := func() { readyOnce.Do(func() { close(f.ready) }) }
		go func() {
			err := f.e.session(f.ctx, client.SolveOpt{}, func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
				st := llb.Image(f.image, llb.Platform(amd64), llb.WithCustomNamef("[%s] builder image's libraries %s", f.app.Name, f.image))
				def, err := st.Marshal(ctx, llb.Platform(amd64))
				if err != nil {
					return nil, err
				}
				res, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
				if err != nil {
					return nil, err
				}
				ref, err := res.SingleRef()
				if err != nil {
					return nil, err
				}
				f.gctx, f.ref = ctx, ref
				signal()
				select {
				case <-f.release:
				case <-ctx.Done():
				}
				return gateway.NewResult(), nil
			}, nil, f.progress)
			if f.ref == nil {
				f.err = fmt.Errorf("read the builder image %s on buildkitd at %s: %s", f.image, f.e.s.Host, shortErr(orErr(err)))
			}
			signal()
			f.done <- err
		}()
		<-f.ready
	})
	return f.err
}

func orErr(err error) error {
	if err == nil {
		return errors.New("the session ended")
	}
	return err
}

// Close ends the session, if one was opened.
func (f *imageFS) Close() error {
	if f.ready == nil {
		return nil
	}
	close(f.release)
	err := <-f.done
	if f.err != nil {
		return nil // already reported by the read that failed
	}
	if err != nil && f.ctx.Err() == nil {
		return fmt.Errorf("builder image session on buildkitd at %s: %s", f.e.s.Host, shortErr(err))
	}
	return nil
}

func notExist(op, name string) error { return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist} }

// missing reports whether a gateway error says that a path does not exist.
func isMissing(err error) bool {
	s := err.Error()
	return strings.Contains(s, "no such file or directory") || strings.Contains(s, "not a directory")
}

// entry is the directory entry of name (nil: there is none).
func (f *imageFS) entry(name string) (*fstypes.Stat, error) {
	name = path.Clean("/" + name)
	f.mu.Lock()
	st, ok := f.stats[name]
	f.mu.Unlock()
	if ok {
		return st, nil
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	if name == "/" {
		s, err := f.ref.StatFile(f.gctx, gateway.StatRequest{Path: "/"})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	dir, base := path.Split(name)
	list, err := f.ref.ReadDir(f.gctx, gateway.ReadDirRequest{Path: dir, IncludePattern: escapePattern(base)})
	if err != nil && !isMissing(err) {
		return nil, fmt.Errorf("read %s in the builder image: %s", dir, shortErr(err))
	}
	st = nil
	for _, s := range list {
		if s.Path == base {
			st = s
		}
	}
	f.mu.Lock()
	f.stats[name] = st
	f.mu.Unlock()
	return st, nil
}

func (f *imageFS) Lstat(name string) (fs.FileInfo, error) {
	st, err := f.entry(name)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, notExist("lstat", name)
	}
	return &fsutil.StatInfo{Stat: st}, nil
}

func (f *imageFS) ReadLink(name string) (string, error) {
	st, err := f.entry(name)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", notExist("readlink", name)
	}
	if fs.FileMode(st.Mode)&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("not a symbolic link")}
	}
	return st.Linkname, nil
}

// chunk is how much one read asks for, under gRPC's message limit.
const chunk = 2 << 20

// Open reads the whole file: elfdeps reads ELF headers all over it, and
// copies what it keeps.
func (f *imageFS) Open(name string) (elfdeps.File, error) {
	real, err := elfdeps.Resolve(f, name)
	if err != nil {
		return nil, err
	}
	st, err := f.entry(real)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, notExist("open", name)
	}
	if !fs.FileMode(st.Mode).IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	if st.Size > f.maxBytes {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%d bytes: too large to read from the builder image", st.Size)}
	}
	buf := make([]byte, 0, st.Size)
	for int64(len(buf)) < st.Size {
		n := st.Size - int64(len(buf))
		if n > chunk {
			n = chunk
		}
		b, err := f.ref.ReadFile(f.gctx, gateway.ReadRequest{Filename: real, Range: &gateway.FileRange{Offset: len(buf), Length: int(n)}})
		if err != nil {
			return nil, fmt.Errorf("read %s in the builder image: %s", real, shortErr(err))
		}
		if len(b) == 0 {
			break
		}
		buf = append(buf, b...)
	}
	return nopCloser{bytes.NewReader(buf)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (f *imageFS) Glob(pattern string) ([]string, error) {
	dir, pat := path.Split(path.Clean("/" + pattern))
	if strings.ContainsAny(dir, "*?[") {
		return nil, fmt.Errorf("glob %s: only the last element may hold wildcards", pattern)
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	real, err := elfdeps.Resolve(f, dir)
	if err != nil {
		return nil, nil
	}
	list, err := f.ref.ReadDir(f.gctx, gateway.ReadDirRequest{Path: real, IncludePattern: pat})
	if err != nil {
		if isMissing(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, s := range list {
		if ok, _ := path.Match(pat, s.Path); ok {
			out = append(out, path.Join(dir, s.Path))
		}
	}
	sort.Strings(out)
	return out, nil
}

var _ elfdeps.FS = (*imageFS)(nil)

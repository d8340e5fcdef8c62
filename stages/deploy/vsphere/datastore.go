package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Files on a datastore, through the datastore's file service (HTTP on
// /folder, what `govc datastore.upload` and the datastore browser use) and
// the FileManager.

// errNoFile is a datastore file that does not exist.
var errNoFile = errors.New("no such file on the datastore")

// dsFile is one file (or folder) on one datastore: Path is relative to
// the datastore's root.
type dsFile struct {
	dc   *object.Datacenter
	ds   *object.Datastore
	Path string
}

// String is the datastore path, "[ds] dir/file".
func (f dsFile) String() string { return f.ds.Path(f.Path) }

// mkdir creates the folder and its parents; one that exists is fine.
func (f dsFile) mkdir(ctx context.Context) error {
	fm := object.NewFileManager(f.ds.Client())
	err := fm.MakeDirectory(ctx, f.String(), f.dc, true)
	if err != nil && !fault.Is(err, &types.FileAlreadyExists{}) {
		return fmt.Errorf("create folder %s: %w", f, err)
	}
	return nil
}

// remove deletes the file or folder (with its contents); one that does not
// exist is fine.
func (f dsFile) remove(ctx context.Context) error {
	fm := object.NewFileManager(f.ds.Client())
	task, err := fm.DeleteDatastoreFile(ctx, f.String(), f.dc)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil && !fault.Is(err, &types.FileNotFound{}) {
		return fmt.Errorf("delete %s: %w", f, err)
	}
	return nil
}

// move renames the file, replacing dst.
func (f dsFile) move(ctx context.Context, dst dsFile) error {
	fm := object.NewFileManager(f.ds.Client())
	task, err := fm.MoveDatastoreFile(ctx, f.String(), f.dc, dst.String(), dst.dc, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", f, dst, err)
	}
	return nil
}

// get requests the file with a Range header ("" for none).
func (f dsFile) get(ctx context.Context, rng string) (*http.Response, error) {
	u := f.ds.NewURL(f.Path)
	d := soap.DefaultDownload
	if rng != "" {
		d.Headers = map[string]string{"Range": rng}
	}
	res, err := f.ds.Client().DownloadRequest(ctx, u, &d)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f, err)
	}
	return res, nil
}

// size is the file's size in bytes, from a one-byte range request (the
// datastore browser does not list a disk's flat extent on every server).
func (f dsFile) size(ctx context.Context) (int64, error) {
	res, err := f.get(ctx, "bytes=0-0")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	switch res.StatusCode {
	case http.StatusPartialContent:
		cr := res.Header.Get("Content-Range") // bytes 0-0/SIZE
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				return n, nil
			}
		}
		return 0, fmt.Errorf("read %s: unexpected Content-Range %q", f, cr)
	case http.StatusOK:
		return res.ContentLength, nil
	case http.StatusRequestedRangeNotSatisfiable:
		return 0, nil // empty
	case http.StatusNotFound:
		return 0, errNoFile
	}
	return 0, fmt.Errorf("read %s: %s", f, res.Status)
}

// readFrom returns the file's bytes from off on; none when it has no more,
// errNoFile when it does not exist.
func (f dsFile) readFrom(ctx context.Context, off int64) ([]byte, error) {
	res, err := f.get(ctx, fmt.Sprintf("bytes=%d-", off))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusPartialContent:
		return io.ReadAll(io.LimitReader(res.Body, maxRead))
	case http.StatusOK: // a server without ranges: skip what was read
		if _, err := io.CopyN(io.Discard, res.Body, off); err != nil {
			return nil, nil
		}
		return io.ReadAll(io.LimitReader(res.Body, maxRead))
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, nil
	case http.StatusNotFound:
		return nil, errNoFile
	}
	return nil, fmt.Errorf("read %s: %s", f, res.Status)
}

// maxRead bounds one read of a console.
const maxRead = 8 << 20

// tail returns at most the last n bytes of the file.
func (f dsFile) tail(ctx context.Context, n int64) ([]byte, error) {
	res, err := f.get(ctx, fmt.Sprintf("bytes=-%d", n))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusPartialContent:
		return io.ReadAll(io.LimitReader(res.Body, n))
	case http.StatusOK:
		b, err := io.ReadAll(res.Body)
		if int64(len(b)) > n {
			b = b[int64(len(b))-n:]
		}
		return b, err
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, nil
	case http.StatusNotFound:
		return nil, errNoFile
	}
	return nil, fmt.Errorf("read %s: %s", f, res.Status)
}

// uploadAttempts is the default number of tries of one upload.
const uploadAttempts = 3

// UploadError is an upload that failed every try.
type UploadError struct {
	File     string
	Attempts int
	Err      error
}

func (e *UploadError) Error() string {
	return fmt.Sprintf("upload to %s failed %d times, the last with: %v; check the datastore's free space and that this host reaches the vSphere server, then run up again (what was uploaded was removed)", e.File, e.Attempts, e.Err)
}

func (e *UploadError) Unwrap() error { return e.Err }

// upload PUTs size bytes from open() to the file, checks that the
// datastore then holds size bytes, and tries again (a fresh reader each
// time) up to attempts times, waiting delay, 2*delay, ... in between.
// progress gets the bytes sent so far.
func (f dsFile) upload(ctx context.Context, size int64, open func() (io.Reader, error), attempts int, delay time.Duration, progress func(sent int64)) error {
	var last error
	for try := 1; try <= attempts; try++ {
		if try > 1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay * time.Duration(1<<(try-2))):
			}
		}
		r, err := open()
		if err != nil {
			return err // local: trying again does not help
		}
		p := soap.DefaultUpload
		p.ContentLength = size
		body := &countingReader{r: r, progress: progress}
		err = f.ds.Upload(ctx, body, f.Path, &p)
		if err == nil {
			var got int64
			if got, err = f.size(ctx); err == nil && got != size {
				err = fmt.Errorf("the datastore holds %d of the %d bytes sent", got, size)
			}
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
	}
	return &UploadError{File: f.String(), Attempts: attempts, Err: last}
}

// countingReader reports how much was read.
type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

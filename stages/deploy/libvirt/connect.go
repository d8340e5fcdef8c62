package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// conn is one connection to a libvirt daemon, closed when the context it
// was opened with ends (go-libvirt's calls take no context: closing the
// connection is what interrupts them).
type conn struct {
	*golibvirt.Libvirt
	uri *url.URL
	raw string
	// Local says the daemon runs on this host (a unix socket, or TCP or
	// SSH to a loopback address): forwarded ports and guest addresses can
	// be dialled from here.
	Local bool
	// Host is the libvirt host's name as the URI gives it ("" for a unix
	// socket).
	Host string

	stop func() bool
	once sync.Once

	// dial is what connect dialled; dl a second connection to the same
	// daemon for volume downloads only (see download).
	dial *url.URL
	dlMu sync.Mutex
	dl   *golibvirt.Libvirt
}

// connect opens raw (a libvirt URI). Its errors say what to do.
func connect(ctx context.Context, raw string) (*conn, error) {
	if err := CheckURI(raw); err != nil {
		return nil, err
	}
	u, _ := url.Parse(raw)
	dial := *u
	_, transport, _ := strings.Cut(u.Scheme, "+")
	unix := transport == "unix" || (transport == "" && u.Host == "")
	if unix && u.Path == "/session" && u.Query().Get("socket") == "" {
		q := dial.Query()
		q.Set("socket", sessionSocket())
		dial.RawQuery = q.Encode()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		l   *golibvirt.Libvirt
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := golibvirt.ConnectToURI(&dial)
		done <- result{l, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.l != nil {
				_ = r.l.Disconnect()
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, connectError(raw, &dial, unix, r.err)
	}
	c := &conn{Libvirt: r.l, uri: u, raw: raw, dial: &dial, Host: u.Hostname(), Local: unix || isLoopback(u.Hostname())}
	c.stop = context.AfterFunc(ctx, func() {
		_ = r.l.Disconnect()
		c.closeDownloads()
	})
	return c, nil
}

// Close ends the connection.
func (c *conn) Close() {
	c.once.Do(func() {
		c.stop()
		_ = c.Disconnect()
		c.closeDownloads()
	})
}

func (c *conn) closeDownloads() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	if c.dl != nil {
		_ = c.dl.Disconnect()
		c.dl = nil
	}
}

// download reads n bytes of v from off. It goes through a connection of its
// own, because go-libvirt's stream reader can wedge its connection: when
// libvirtd 9.0 sends one more empty packet after the end of a download
// (which it sometimes does while virtlogd appends to the file), go-libvirt
// blocks delivering it while holding the lock every call needs. A
// download that got its n bytes and does not return is therefore taken as
// done and its connection abandoned (its goroutines stay blocked; the next
// download dials a new one). Bytes are also lost, about once in 200
// downloads of a file that grows: the download returns none of them, or
// never returns, with go-libvirt's router blocked on one more empty packet
// (as if the data had come before the call's reply and been taken for
// it). A download that gets no byte for firstByteWait is abandoned the
// same way, and a short or abandoned one is tried again (a file that is
// shorter than asked, as a console that virtlogd just rotated, stays
// short: that is an error).
func (c *conn) download(v golibvirt.StorageVol, off, n uint64) ([]byte, error) {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	for try := 1; ; try++ {
		b, err := c.downloadOnce(v, off, n)
		if !errors.Is(err, errNoFirstByte) && !errors.Is(err, errShort) || try == downloadTries {
			return b, err
		}
	}
}

// downloadTries is how many times a download that is short or gets no
// byte is tried.
const downloadTries = 3

var (
	errNoFirstByte = errors.New("no byte came")
	errShort       = errors.New("short")
)

func (c *conn) downloadOnce(v golibvirt.StorageVol, off, n uint64) ([]byte, error) {
	if c.dl == nil {
		l, err := golibvirt.ConnectToURI(c.dial)
		if err != nil {
			return nil, fmt.Errorf("connect to libvirt at %s for a download: %w", c.raw, err)
		}
		c.dl = l
	}
	l := c.dl
	w := &fillBuffer{want: int(n), first: make(chan struct{}), full: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- l.StorageVolDownload(v, w, off, n, 0) }()
	stall := time.NewTimer(downloadStall + time.Duration(n>>20)*time.Second)
	defer stall.Stop()
	wait := firstByteWait
	if !c.Local {
		wait = remoteFirstByteWait
	}
	first := time.NewTimer(wait)
	defer first.Stop()
	firstByte := w.first
	var err error
	for err == nil {
		select {
		case err = <-done:
			return w.result(v, err)
		case <-firstByte:
			firstByte = nil // it came
		case <-first.C:
			if firstByte != nil {
				c.abandon(l, done)
				return nil, fmt.Errorf("download of volume %s: %w", v.Name, errNoFirstByte)
			}
		case <-w.full:
			select {
			case err = <-done:
			case <-time.After(500 * time.Millisecond):
				c.abandon(l, done)
			}
			return w.result(v, err)
		case <-stall.C:
			c.abandon(l, done)
			return nil, fmt.Errorf("download of volume %s stalled", v.Name)
		}
	}
	return nil, err
}

// abandon leaves the download connection l, whose download ends on done,
// to itself: the next download dials a new one. It is closed if its
// download ever returns.
func (c *conn) abandon(l *golibvirt.Libvirt, done <-chan error) {
	c.dl = nil
	go func() {
		<-done
		_ = l.Disconnect()
	}()
}

// firstByteWait bounds the wait for a download's first byte through a
// local libvirtd, remoteFirstByteWait through a remote one.
const (
	firstByteWait       = 500 * time.Millisecond
	remoteFirstByteWait = 5 * time.Second
)

// downloadStall bounds a download that makes no progress.
const downloadStall = 30 * time.Second

// fillBuffer collects a download and says when it got its first byte and
// when it holds want bytes.
type fillBuffer struct {
	mu    sync.Mutex
	b     []byte
	want  int
	first chan struct{}
	full  chan struct{}
	got   bool
}

func (f *fillBuffer) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(p) > 0 && !f.got {
		f.got = true
		close(f.first)
	}
	was := len(f.b) >= f.want
	f.b = append(f.b, p...)
	if !was && len(f.b) >= f.want {
		close(f.full)
	}
	return len(p), nil
}

func (f *fillBuffer) bytes() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.b...)
}

// result is what a download that ended with err got.
func (f *fillBuffer) result(v golibvirt.StorageVol, err error) ([]byte, error) {
	b := f.bytes()
	if err != nil {
		return nil, fmt.Errorf("download volume %s: %w", v.Name, err)
	}
	if len(b) != f.want {
		return nil, fmt.Errorf("download volume %s: got %d of %d bytes: %w", v.Name, len(b), f.want, errShort)
	}
	return b, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sessionSocket is where a user's session libvirtd listens.
func sessionSocket() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "libvirt", "libvirt-sock")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "libvirt", "libvirt-sock")
}

// socketPath is the unix socket a URI dials.
func socketPath(u *url.URL) string {
	if s := u.Query().Get("socket"); s != "" {
		return s
	}
	return "/var/run/libvirt/libvirt-sock"
}

// connectError turns a failed connection into what to do about it.
func connectError(raw string, dial *url.URL, unix bool, err error) error {
	var lerr golibvirt.Error
	switch {
	case errors.As(err, &lerr) && strings.Contains(lerr.Message, "no connection driver available"):
		return fmt.Errorf("libvirt at %s has no QEMU driver (%s); on the libvirt host install it (Debian: apt-get install libvirt-daemon-driver-qemu, or libvirt-daemon-system) and restart libvirtd", raw, lerr.Message)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on libvirt's socket %s (%s): add your user to the libvirt group (usermod -aG libvirt $USER, then log in again), run unikfile as root, or use qemu:///session", socketPath(dial), raw)
	case unix && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)):
		return fmt.Errorf("no libvirtd answers at %s (socket %s: %v); start it (systemctl start libvirtd, or libvirtd -d; Debian: apt-get install libvirt-daemon-system), or set uri in the target's libvirt block to the host that runs it", raw, socketPath(dial), rootCause(err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no libvirtd answers at %s (%v); make it listen there (qemu+tcp needs libvirtd --listen or virtproxyd-tcp.socket; qemu+ssh needs sshd and libvirtd on the host), or check the URI in the target's libvirt block", raw, rootCause(err))
	}
	return fmt.Errorf("connect to libvirt at %s: %v; check that libvirtd runs there and the URI in the target's libvirt block", raw, err)
}

// rootCause is the innermost error, for messages that already give the
// context.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// lverr is the libvirt error code of err, or -1.
func lverr(err error) golibvirt.ErrorNumber {
	var e golibvirt.Error
	if errors.As(err, &e) {
		return golibvirt.ErrorNumber(e.Code)
	}
	return -1
}

package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// DialTimeout bounds the connection to a backend. Backends are local VM
// ports, which answer at once or not at all.
const DialTimeout = 3 * time.Second

// Forwarder listens on one address and forwards every accepted connection
// to its current backend.
type Forwarder struct {
	ln      net.Listener
	mu      sync.Mutex
	current *Backend
	ready   chan struct{} // closed at the first Switch
	closed  bool
	all     map[*Backend]struct{}
	wg      sync.WaitGroup // the accept loop and every connection's copiers
}

// Backend is one address connections are forwarded to, with the
// connections open to it.
type Backend struct {
	addr  string
	mu    sync.Mutex
	conns map[*pair]struct{}
	idle  chan struct{} // closed (and replaced) whenever conns becomes empty
}

type pair struct{ client, server net.Conn }

// Addr is the backend's address.
func (b *Backend) Addr() string { return b.addr }

// Open reports how many connections are open to the backend.
func (b *Backend) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// Listen starts forwarding from addr (host:port). Connections that arrive
// before the first Switch wait for it.
func Listen(addr string) (*Forwarder, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{ln: ln, ready: make(chan struct{}), all: map[*Backend]struct{}{}}
	f.wg.Go(f.accept)
	return f, nil
}

// Addr is the address the forwarder listens on.
func (f *Forwarder) Addr() net.Addr { return f.ln.Addr() }

// Switch makes addr the backend of every connection accepted from now on and
// returns the previous backend (nil the first time). Connections open to
// the previous backend are not touched; Drain them.
func (f *Forwarder) Switch(addr string) *Backend {
	nb := &Backend{addr: addr, conns: map[*pair]struct{}{}, idle: make(chan struct{})}
	close(nb.idle)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	old := f.current
	f.current = nb
	f.all[nb] = struct{}{}
	if old == nil {
		close(f.ready)
	}
	return old
}

// Current is the backend new connections go to, or nil before the first
// Switch.
func (f *Forwarder) Current() *Backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// Drain waits until every connection open to b has ended, or until bound
// has passed or ctx ends, and then closes what is left. It returns how many
// connections it closed. b must no longer be current.
func (f *Forwarder) Drain(ctx context.Context, b *Backend, bound time.Duration) int {
	if b == nil {
		return 0
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
wait:
	for {
		b.mu.Lock()
		n, idle := len(b.conns), b.idle
		b.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-idle:
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	closed := b.closeAll()
	f.mu.Lock()
	if f.current != b {
		delete(f.all, b)
	}
	f.mu.Unlock()
	return closed
}

func (b *Backend) closeAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.conns)
	for p := range b.conns {
		_ = p.client.Close()
		_ = p.server.Close()
	}
	return n
}

// Close stops listening and closes every open connection, then waits for
// the forwarder's goroutines to end.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	backends := make([]*Backend, 0, len(f.all))
	for b := range f.all {
		backends = append(backends, b)
	}
	if f.current == nil {
		close(f.ready) // connections waiting for a first backend give up
	}
	f.mu.Unlock()
	err := f.ln.Close()
	for _, b := range backends {
		b.closeAll()
	}
	f.wg.Wait()
	return err
}

func (f *Forwarder) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		f.wg.Go(func() { f.serve(c) })
	}
}

// serve forwards one client connection to the backend current when it
// arrived (after the first Switch, for an early one).
func (f *Forwarder) serve(client net.Conn) {
	<-f.ready
	f.mu.Lock()
	b, closed := f.current, f.closed
	f.mu.Unlock()
	if b == nil || closed {
		_ = client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", b.addr, DialTimeout)
	if err != nil {
		_ = client.Close()
		return
	}
	p := &pair{client: client, server: server}
	b.mu.Lock()
	if len(b.conns) == 0 {
		b.idle = make(chan struct{})
	}
	b.conns[p] = struct{}{}
	b.mu.Unlock()
	f.mu.Lock()
	closed = f.closed
	f.mu.Unlock()
	if closed {
		// Close ran between the dial and the registration.
		_ = client.Close()
		_ = server.Close()
	}

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// The source said it is done writing: pass that on, so that
		// protocols that half-close (HTTP/1.0 clients, shells) finish.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	_ = client.Close()
	_ = server.Close()
	b.mu.Lock()
	delete(b.conns, p)
	if len(b.conns) == 0 {
		close(b.idle)
	}
	b.mu.Unlock()
}

package forward

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpBackend is a real HTTP server on a free loopback port answering msg.
func httpBackend(t *testing.T, msg string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, msg)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func listen(t *testing.T) *Forwarder {
	t.Helper()
	f, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func get(client *http.Client, f *Forwarder) (string, error) {
	resp, err := client.Get("http://" + f.Addr().String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var oneShot = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func TestSwitchSendsNewConnectionsToTheNewBackend(t *testing.T) {
	f := listen(t)
	if old := f.Switch(httpBackend(t, "v1")); old != nil {
		t.Fatalf("first Switch returned a previous backend %v", old.Addr())
	}
	if got, err := get(oneShot, f); err != nil || got != "v1" {
		t.Fatalf("before the switch: %q, %v; want v1", got, err)
	}
	old := f.Switch(httpBackend(t, "v2"))
	if old == nil {
		t.Fatal("Switch did not return the previous backend")
	}
	if got, err := get(oneShot, f); err != nil || got != "v2" {
		t.Fatalf("after the switch: %q, %v; want v2", got, err)
	}
	if n := f.Drain(context.Background(), old, time.Second); n != 0 {
		t.Fatalf("Drain closed %d connections of an idle backend", n)
	}
}

// An open connection stays with the backend it was accepted for; Drain
// waits for it to finish.
func TestOpenConnectionStaysWithOldBackendAndIsDrained(t *testing.T) {
	f := listen(t)
	f.Switch(httpBackend(t, "v1"))
	keep := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	if got, err := get(keep, f); err != nil || got != "v1" {
		t.Fatalf("%q, %v", got, err)
	}
	old := f.Switch(httpBackend(t, "v2"))
	// The kept-alive connection still reaches v1.
	if got, err := get(keep, f); err != nil || got != "v1" {
		t.Fatalf("kept-alive connection after the switch: %q, %v; want v1", got, err)
	}
	if old.Open() != 1 {
		t.Fatalf("old backend has %d open connections, want 1", old.Open())
	}
	done := make(chan int)
	go func() { done <- f.Drain(context.Background(), old, 10*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case n := <-done:
		t.Fatalf("Drain returned (%d) while a connection was open", n)
	default:
	}
	keep.CloseIdleConnections()
	select {
	case n := <-done:
		if n != 0 {
			t.Fatalf("Drain closed %d connections after they had ended", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the last connection ended")
	}
	if got, err := get(keep, f); err != nil || got != "v2" {
		t.Fatalf("new connection: %q, %v; want v2", got, err)
	}
}

func TestDrainBoundClosesLingeringConnections(t *testing.T) {
	f := listen(t)
	f.Switch(httpBackend(t, "v1"))
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	old := f.Switch(httpBackend(t, "v2"))
	if n := f.Drain(context.Background(), old, 200*time.Millisecond); n != 1 {
		t.Fatalf("Drain closed %d connections, want the 1 left open", n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the lingering connection was not closed")
	}
}

func TestConnectionBeforeFirstBackendWaits(t *testing.T) {
	f := listen(t)
	res := make(chan string, 1)
	go func() {
		got, err := get(oneShot, f)
		if err != nil {
			got = err.Error()
		}
		res <- got
	}()
	time.Sleep(200 * time.Millisecond)
	f.Switch(httpBackend(t, "late"))
	if got := <-res; got != "late" {
		t.Fatalf("early request got %q, want late", got)
	}
}

// A steady stream of requests through many switches sees no failure, and
// after the last switch only the newest answer.
func TestNoFailedRequestsAcrossSwitches(t *testing.T) {
	f := listen(t)
	f.Switch(httpBackend(t, "v0"))
	var failed, ok atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(oneShot, f); err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
				} else {
					ok.Add(1)
				}
			}
		})
	}
	for i := 1; i <= 20; i++ {
		time.Sleep(20 * time.Millisecond)
		old := f.Switch(httpBackend(t, fmt.Sprintf("v%d", i)))
		f.Drain(context.Background(), old, 2*time.Second)
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across 20 switches; last: %v", failed.Load(), failed.Load()+ok.Load(), lastErr.Load())
	}
	if got, err := get(oneShot, f); err != nil || got != "v20" {
		t.Fatalf("after the switches: %q, %v; want v20", got, err)
	}
}

func TestHalfCloseIsPassedOn(t *testing.T) {
	// An echo backend that answers once the client has finished writing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		c.Write([]byte(strings.ToUpper(string(b))))
		c.Close()
	}()
	f := listen(t)
	f.Switch(ln.Addr().String())
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "HELLO" {
		t.Fatalf("got %q, %v; want HELLO", b, err)
	}
}

func TestCloseEndsOpenConnectionsAndFreesThePort(t *testing.T) {
	f, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := f.Addr().String()
	f.Switch(httpBackend(t, "v1"))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- f.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a connection open")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("open connection survived Close")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still taken after Close: %v", err)
	}
	l.Close()
	if f.Switch("127.0.0.1:1") != nil {
		t.Fatal("Switch after Close returned a backend")
	}
}

func TestListenOnATakenPortFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen(l.Addr().String()); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Listen on a taken port: %v", err)
	}
}

package vsphere

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

// The tests run govmomi's simulator (vcsim) in this process, serving the
// vSphere API and the datastore file service on 127.0.0.1, with a
// datastore that is a temporary folder here. vcsim runs no guest: a test
// that needs a console stands in for the guest's init by writing the
// console file into the datastore folder, and says so in its name.

const (
	simUser = "unikfile-test"
	simPass = "s3cr3t-Pa55"
)

type sim struct {
	t     *testing.T
	m     *simulator.Model
	srv   *simulator.Server
	url   *url.URL // the API, without credentials (through the proxy)
	dsDir string   // the datastore's folder on this machine
	c     *govmomi.Client
	proxy *faultProxy
}

// newSim starts vcsim (one datacenter DC0, cluster DC0_C0, standalone
// host DC0_H0, datastore LocalDS_0, networks "VM Network" and DC0_DVPG0,
// no VMs) with a login of its own, behind a proxy that can break uploads.
func newSim(t *testing.T) *sim {
	t.Helper()
	m := simulator.VPX()
	m.Machine = 0
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(simUser, simPass)}
	srv := m.Service.NewServer()
	t.Cleanup(func() { srv.Close(); m.Remove() })
	s := &sim{t: t, m: m, srv: srv}
	s.proxy = newFaultProxy(t, srv.URL)
	s.url = &url.URL{Scheme: "http", Host: s.proxy.addr, Path: "/sdk"}

	direct := *srv.URL
	direct.User = url.UserPassword(simUser, simPass)
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, &direct, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	s.c = c
	ds, err := find.NewFinder(c.Client).Datastore(ctx, "/DC0/datastore/LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	var dsm mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"summary"}, &dsm); err != nil {
		t.Fatal(err)
	}
	s.dsDir = dsm.Summary.Url
	return s
}

// env is the environment of a provider that logs in as the test's user.
func (s *sim) env() func(string) string {
	return func(k string) string {
		switch k {
		case envUsername:
			return simUser
		case envPassword:
			return simPass
		}
		return ""
	}
}

// provider is a provider against the sim with short waits.
func (s *sim) provider() *Provider {
	return &Provider{Getenv: s.env(), Poll: 20 * time.Millisecond, StopGrace: 2 * time.Second, RetryDelay: 10 * time.Millisecond}
}

// settings are a target's vsphere settings for the sim.
func (s *sim) settings() *Settings {
	return &Settings{URL: s.url.String(), Datacenter: "DC0", Datastore: "LocalDS_0", Network: "VM Network", Cluster: "DC0_C0", CPUs: 1}
}

func (s *sim) target(st *Settings, apps ...string) *lang.Target {
	return &lang.Target{Name: "prod", Provider: Name, Apps: apps, Settings: st}
}

// fault makes the next call of method fail with f (nil: a generic
// fault). The stand-in guest g, if any, is paused until clearFaults.
func (s *sim) fault(g *guestStandIn, method string, f types.BaseMethodFault) {
	if g != nil {
		g.pause()
	}
	r := &simulator.FaultInjectionRule{
		MethodName: method, ObjectType: "*", ObjectName: "*", Probability: 1, MaxCount: 1,
		FaultType: simulator.FaultTypeGeneric, Message: "injected " + method + " fault", Enabled: true,
	}
	if f != nil {
		r.FaultType, r.Fault = simulator.FaultTypeCustom, f
	}
	s.m.Service.AddFaultRule(r)
}

// clearFaults removes the rules and resumes g.
func (s *sim) clearFaults(g *guestStandIn) {
	s.m.Service.ClearFaultRules()
	if g != nil {
		g.resume()
	}
}

// vms are the VMs whose names start with unikfile-, by name.
func (s *sim) vms() map[string]*object.VirtualMachine {
	s.t.Helper()
	f := find.NewFinder(s.c.Client)
	dc, err := f.Datacenter(context.Background(), "DC0")
	if err != nil {
		s.t.Fatal(err)
	}
	f.SetDatacenter(dc)
	l, err := f.VirtualMachineList(context.Background(), "*")
	if err != nil && !strings.Contains(err.Error(), "not found") {
		s.t.Fatal(err)
	}
	out := map[string]*object.VirtualMachine{}
	for _, vm := range l {
		if strings.HasPrefix(vm.Name(), vmPrefix) {
			out[vm.Name()] = vm
		}
	}
	return out
}

// vmDirs are the unikfile-* folders on the datastore.
func (s *sim) vmDirs() []string {
	s.t.Helper()
	ents, _ := os.ReadDir(s.dsDir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), vmPrefix) && e.Name() != imagesDir {
			out = append(out, e.Name())
		}
	}
	return out
}

// images are the image folders on the datastore, and what each holds.
func (s *sim) images() map[string][]string {
	ents, _ := os.ReadDir(filepath.Join(s.dsDir, imagesDir))
	out := map[string][]string{}
	for _, e := range ents {
		files, _ := os.ReadDir(filepath.Join(s.dsDir, imagesDir, e.Name()))
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		out[e.Name()] = names
	}
	return out
}

// nothingLeft fails unless no VM and no VM folder of unikfile's remain.
func (s *sim) nothingLeft() {
	s.t.Helper()
	if vms := s.vms(); len(vms) > 0 {
		s.t.Errorf("VMs left: %v", keys(vms))
	}
	if dirs := s.vmDirs(); len(dirs) > 0 {
		s.t.Errorf("VM folders left on the datastore: %v", dirs)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// guestStandIn writes the console file of each VM of unikfile's the
// moment it is powered on, as the guest's init would: lines(vmName) is
// what it prints (nil: nothing). It stops with the test.
type guestStandIn struct {
	s      *sim
	iter   sync.Mutex // held while the stand-in looks at the VMs
	paused bool
	mu     sync.Mutex
	lines  func(vm string) []string
	seen   map[string]bool
	done   chan struct{}
	wg     sync.WaitGroup
}

func (s *sim) standIn(lines func(vm string) []string) *guestStandIn {
	g := &guestStandIn{s: s, lines: lines, seen: map[string]bool{}, done: make(chan struct{})}
	g.wg.Add(1)
	go g.loop()
	s.t.Cleanup(g.stop)
	return g
}

func (g *guestStandIn) stop() {
	select {
	case <-g.done:
	default:
		close(g.done)
	}
	g.wg.Wait()
}

func (g *guestStandIn) loop() {
	defer g.wg.Done()
	ctx := context.Background()
	for {
		select {
		case <-g.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		g.iter.Lock()
		if !g.paused {
			g.look(ctx)
		}
		g.iter.Unlock()
	}
}

// pause stops the stand-in from calling vcsim until resume: vcsim's fault
// injector counts its rules' hits without a lock, so a test that injects
// faults makes no calls of its own meanwhile.
func (g *guestStandIn) pause() {
	g.iter.Lock()
	g.paused = true
	g.iter.Unlock()
}

func (g *guestStandIn) resume() {
	g.iter.Lock()
	g.paused = false
	g.iter.Unlock()
}

func (g *guestStandIn) look(ctx context.Context) {
	{
		f := find.NewFinder(g.s.c.Client)
		dc, err := f.Datacenter(ctx, "DC0")
		if err != nil {
			return
		}
		f.SetDatacenter(dc)
		l, _ := f.VirtualMachineList(ctx, "*")
		for _, vm := range l {
			name := vm.Name()
			g.mu.Lock()
			seen := g.seen[name]
			g.mu.Unlock()
			if seen || !strings.HasPrefix(name, vmPrefix) {
				continue
			}
			if st, err := powerState(ctx, vm); err != nil || st != types.VirtualMachinePowerStatePoweredOn {
				continue
			}
			g.mu.Lock()
			g.seen[name] = true
			lines := g.lines(name)
			g.mu.Unlock()
			if lines != nil {
				g.write(name, lines...)
			}
			// After its exit status the init powers the machine off.
			if len(lines) > 0 && strings.HasPrefix(lines[len(lines)-1], "unikfile-init: exit status ") {
				_ = powerOff(ctx, vm)
			}
		}
	}
}

// write appends lines to the VM's console file, CRLF-terminated as a
// serial console writes them.
func (g *guestStandIn) write(vm string, lines ...string) {
	f, err := os.OpenFile(filepath.Join(g.s.dsDir, vm, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		g.s.t.Errorf("stand-in guest: %v", err)
		return
	}
	defer f.Close()
	for _, l := range lines {
		_, _ = f.WriteString(l + "\r\n")
	}
}

// exit prints the last lines of a guest (its exit status) and powers the
// VM off, as the init does.
func (g *guestStandIn) exit(vm string, lines ...string) {
	g.write(vm, lines...)
	if v := g.s.vms()[vm]; v != nil {
		_ = powerOff(context.Background(), v)
	}
}

// bootLines are what the init prints when the app listens.
func bootLines(addr string) []string {
	return []string{
		"[    0.000000] Linux version 6.1.0 (stand-in)",
		"unikfile-init: address " + addr + "/24 via dhcp",
		"serving on :8080",
		"unikfile-init: ready",
	}
}

// testImage is a streamOptimized VMDK image of a raw disk of random and
// zero regions (made by qemu-img, as the format stage makes them).
type testImage struct {
	img *pack.Image
	dir string
	raw []byte
}

func newTestImage(t *testing.T, app, boot string) testImage {
	t.Helper()
	dir := t.TempDir()
	rawPath, raw := rawDisk(t, dir)
	qemuImg(t, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", rawPath, filepath.Join(dir, "disk.vmdk"))
	os.Remove(rawPath)
	b, _ := os.ReadFile(filepath.Join(dir, "disk.vmdk"))
	sum := sha256.Sum256(b)
	img := &pack.Image{App: app, Base: "linux", Format: "vmdk", Disk: "disk.vmdk", Boot: boot,
		Digest: hex.EncodeToString(sum[:]), MemoryMiB: 254, Ports: []int{8080}, Size: int64(len(b)), VirtualSize: int64(len(raw))}
	j, _ := json.Marshal(img)
	os.WriteFile(filepath.Join(dir, pack.ImageFile), j, 0o644)
	return testImage{img: img, dir: dir, raw: raw}
}

func (ti testImage) spec(t *testing.T, tg *lang.Target, id string) deploy.Spec {
	return deploy.Spec{
		Project: "/projects/p", Target: tg, Image: ti.img, ImageDir: ti.dir,
		RunDir: filepath.Join(t.TempDir(), id), ID: id, Timeout: 20 * time.Second,
	}
}

// faultProxy forwards to vcsim and breaks datastore uploads on request.
type faultProxy struct {
	addr string
	mu   sync.Mutex
	// breaks are applied to PUTs of files whose path ends in suffix, one
	// per PUT, in order; "" lets it through.
	suffix string
	breaks []string
	puts   int
}

func newFaultProxy(t *testing.T, target *url.URL) *faultProxy {
	p := &faultProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/folder/") {
			p.mu.Lock()
			var brk string
			if p.suffix != "" && strings.HasSuffix(r.URL.Path, p.suffix) {
				p.puts++
				if len(p.breaks) > 0 {
					brk, p.breaks = p.breaks[0], p.breaks[1:]
				}
			}
			p.mu.Unlock()
			switch brk {
			case "500":
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(w, "injected failure", http.StatusInternalServerError)
				return
			case "drop": // the connection dies half-way through the body
				_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				return
			case "truncate": // the server gets (and acknowledges) half
				half, _ := io.ReadAll(io.LimitReader(r.Body, r.ContentLength/2))
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body = io.NopCloser(bytes.NewReader(half))
				r.ContentLength = int64(len(half))
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// breakUploads breaks the next PUTs of files ending in suffix.
func (p *faultProxy) breakUploads(suffix string, breaks ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.suffix, p.breaks, p.puts = suffix, breaks, 0
}

func (p *faultProxy) putCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.puts
}

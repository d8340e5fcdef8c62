package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/console"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// portDialTimeout is short: user-mode networking accepts on the host side
// at once, so a slow dial means nothing.
const portDialTimeout = 300 * time.Millisecond

// exitGrace is how long a guest that printed its exit status gets to power
// off by itself.
const exitGrace = 5 * time.Second

// Boot uploads the image's volumes (unless the pool has them), defines the
// domain with unikfile's metadata, starts it paused, adds its host port
// forwards (user-mode networking), lets it run and waits until the
// console shows the init's ready marker and the app's ports answer.
// Whatever it created is removed when it fails, except for an app that
// exited before it was ready: that instance is returned (State Exited)
// with its domain and console kept for `unikfile logs`.
func (p *Provider) Boot(ctx context.Context, spec deploy.Spec) (*state.Instance, error) {
	app := spec.AppName()
	if err := checkSpec(&spec); err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	s := SettingsOf(spec.Target)
	c, err := connect(ctx, s.URI)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app, err)
	}
	defer c.Close()
	b := &booting{p: p, spec: &spec, app: app, s: s, c: c}
	inst, err := b.boot(ctx)
	if err != nil {
		return inst, fmt.Errorf("app %s: %w", app, err)
	}
	return inst, nil
}

// checkSpec rejects what this provider cannot boot.
func checkSpec(spec *deploy.Spec) error {
	img := spec.Image
	switch {
	case img == nil:
		return errors.New("no image to boot")
	case spec.Target == nil:
		return errors.New("no target")
	case spec.ID == "" || spec.RunDir == "" || !filepath.IsAbs(spec.RunDir):
		return errors.New("no instance ID or absolute run directory")
	}
	switch img.Format {
	case pack.FormatKernelInitrd, "":
		if img.Kernel == "" {
			return errors.New("the image has no kernel")
		}
	case FormatQCOW2, FormatRaw:
		if img.Disk == "" {
			return errors.New("the disk image names no disk file; rebuild it")
		}
		if img.Boot != pack.BootBIOS && img.Boot != pack.BootUEFI {
			return fmt.Errorf("the disk image's boot mode is %q; rebuild it", img.Boot)
		}
	default:
		return fmt.Errorf("the libvirt provider boots kernel+initrd, qcow2 and raw images, not %q; set format = \"qcow2\" for this target", img.Format)
	}
	if !filepath.IsAbs(spec.ImageDir) {
		abs, err := filepath.Abs(spec.ImageDir)
		if err != nil {
			return err
		}
		spec.ImageDir = abs
	}
	for _, f := range []string{img.Kernel, img.Initrd, img.Disk} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(spec.ImageDir, f)); err != nil {
			return fmt.Errorf("image file: %w; rebuild the image", err)
		}
	}
	return nil
}

// booting is one Boot in progress.
type booting struct {
	p    *Provider
	spec *deploy.Spec
	app  string
	s    *Settings
	c    *conn
	pl   *pool
	cfg  Config
	dom  golibvirt.Domain
	inst *state.Instance
	con  console.Scanner
	cr   *consoleReader // the console, read across virtlogd's rotations
	// final are the forwards the instance ends with, cfg.Forwards the
	// ones it has now.
	final []lang.Forward
	// created says something exists that a failure must remove.
	created   bool
	unlockVol func()
	// backing and size are the overlay's backing image and virtual size.
	backing string
	size    uint64
}

func (b *booting) say(format string, args ...any) {
	b.spec.Say("%s: %s", b.app, fmt.Sprintf(format, args...))
}

func (b *booting) boot(ctx context.Context) (*state.Instance, error) {
	spec, s, c := b.spec, b.s, b.c
	var bootFw []lang.Forward
	if s.User() {
		var err error
		if b.final, bootFw, err = planForwards(spec, s.URI, c.Local); err != nil {
			return nil, err
		}
	}
	domType, err := b.domainType()
	if err != nil {
		return nil, err
	}
	if b.pl, err = openPool(c, s.Pool); err != nil {
		return nil, err
	}
	if err := b.checkNetwork(); err != nil {
		return nil, err
	}
	vols, err := imageVolumes(spec)
	if err != nil {
		return nil, err
	}
	id := spec.ID
	b.cfg = Config{
		URI: s.URI, Pool: s.Pool, Domain: domainName(id), ConsoleVolume: consoleVolume(id),
		Metadata: Metadata{
			ID: id, Project: spec.Project, Target: spec.Target.Name, App: b.app, Image: spec.Image.Digest,
			Settings: deploy.SettingsDigest(spec.Target, spec.App, spec.Forwards), Pool: s.Pool, Client: b.p.client,
		},
		Machine: Machine{Type: domType, MemoryMiB: memoryMiB(spec), CPUs: s.CPUs, Network: s.Network, Bridge: s.Bridge},
	}
	for _, v := range vols {
		b.cfg.ImageVolumes = append(b.cfg.ImageVolumes, v.Name)
	}
	b.cfg.Metadata.Volumes = b.cfg.ImageVolumes
	if isDisk(spec.Image) {
		b.cfg.OverlayVolume = overlayVolume(id)
	}
	// The config goes into the run directory before anything is created:
	// if this process dies, the next up or down finds what to remove.
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return nil, err
	}
	if err := writeConfig(spec.RunDir, b.cfg); err != nil {
		_ = os.RemoveAll(spec.RunDir)
		return nil, err
	}
	b.created = true
	if err := b.sweepOrphans(ctx); err != nil {
		return nil, b.fail(ctx, err)
	}
	if err := b.uploadImages(ctx, vols); err != nil {
		return nil, b.fail(ctx, err)
	}
	if err := b.define(); err != nil {
		return nil, b.fail(ctx, err)
	}
	if err := b.instanceVolumes(); err != nil {
		return nil, b.fail(ctx, err)
	}
	if err := b.start(bootFw); err != nil {
		return nil, b.fail(ctx, err)
	}
	raw, _ := json.Marshal(b.cfg)
	_ = writeConfig(spec.RunDir, b.cfg)
	b.inst = &state.Instance{
		ID: id, Project: spec.Project, Target: spec.Target.Name, App: b.app, Provider: Name,
		ImageDigest: spec.Image.Digest, ImageDir: spec.ImageDir, RunDir: spec.RunDir,
		State: state.Starting, Ports: b.ports(), Created: time.Now().UTC(), Config: raw,
	}
	if spec.Attach && spec.Console != nil {
		b.con.Out = spec.Console
	} else {
		b.con.OnError = func(msg string) { b.say("guest %s", msg) }
	}
	if inst, err := b.waitReady(ctx); inst != nil || err != nil {
		return inst, err
	}
	b.inst.State, b.inst.Started = state.Running, time.Now().UTC()
	// Stop needs to know it after virtlogd rotated the boot's lines away.
	button := b.con.PowerButton()
	b.cfg.PowerButton = &button
	hctx := context.WithoutCancel(ctx)
	if err := b.takeOverPorts(hctx); err != nil {
		return nil, b.fail(ctx, fmt.Errorf("ready, but cannot take over the host ports of the instance it replaces: %w", err))
	}
	b.inst.Ports = b.ports()
	b.inst.Config, _ = json.Marshal(b.cfg)
	_ = writeConfig(spec.RunDir, b.cfg)
	if spec.Ready != nil {
		if err := spec.Ready(b.inst); err != nil {
			return b.inst, err
		}
	}
	if !spec.Attach {
		return b.inst, nil
	}
	return b.follow(ctx)
}

// domainType is "kvm" or "qemu" (TCG) as the settings and the host say.
func (b *booting) domainType() (string, error) {
	switch b.s.Accel {
	case AccelTCG:
		return "qemu", nil
	case AccelKVM:
		return "kvm", nil
	}
	if _, err := b.c.ConnectGetDomainCapabilities(nil, []string{"x86_64"}, nil, []string{"kvm"}, 0); err == nil {
		return "kvm", nil
	}
	if _, err := b.c.ConnectGetDomainCapabilities(nil, []string{"x86_64"}, nil, []string{"qemu"}, 0); err != nil {
		return "", fmt.Errorf("libvirt at %s cannot run x86_64 QEMU domains (%v); on the libvirt host install QEMU (Debian: apt-get install qemu-system-x86 libvirt-daemon-driver-qemu) and restart libvirtd", b.s.URI, err)
	}
	b.say("libvirt at %s offers no KVM: booting with TCG emulation, which is much slower (set accel = \"tcg\" in the target's libvirt block to say so)", b.s.URI)
	return "qemu", nil
}

// checkNetwork fails early on a libvirt network that is missing or down.
func (b *booting) checkNetwork() error {
	if b.s.User() || b.s.Bridge != "" {
		return nil
	}
	n, err := b.c.NetworkLookupByName(b.s.Network)
	if lverr(err) == golibvirt.ErrNoNetwork {
		return fmt.Errorf("libvirt at %s has no network %q; define and start one (virsh net-define FILE.xml && virsh net-start %s), set network in the target's libvirt block to one of virsh net-list --all, or use network = %q for user-mode networking with host port forwards", b.s.URI, b.s.Network, b.s.Network, NetworkUser)
	}
	if err != nil {
		return fmt.Errorf("network %s: %w", b.s.Network, err)
	}
	if active, err := b.c.NetworkIsActive(n); err == nil && active == 0 {
		return fmt.Errorf("network %q on %s is not active; start it: virsh net-start %s (and virsh net-autostart %s)", b.s.Network, b.s.URI, b.s.Network, b.s.Network)
	}
	return nil
}

func isDisk(img *pack.Image) bool {
	return img.Format != "" && img.Format != pack.FormatKernelInitrd
}

func memoryMiB(spec *deploy.Spec) int {
	switch {
	case spec.Image.MemoryMiB > 0:
		return spec.Image.MemoryMiB
	case spec.App != nil && spec.App.MemoryMiB > 0:
		return spec.App.MemoryMiB
	}
	return DefaultMemoryMiB
}

// imageVolumes are the volumes the image's files go into, named by their
// content's sha256.
func imageVolumes(spec *deploy.Spec) ([]imageVolume, error) {
	img := spec.Image
	if isDisk(img) {
		f := filepath.Join(spec.ImageDir, img.Disk)
		digest, size, err := pack.FileDigest(f)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		return []imageVolume{{Name: volName(digest, img.Format), File: f, Size: size, Kind: img.Format + " disk"}}, nil
	}
	var out []imageVolume
	for _, kf := range []struct{ kind, file string }{{"kernel", img.Kernel}, {"initrd", img.Initrd}} {
		if kf.file == "" {
			continue
		}
		f := filepath.Join(spec.ImageDir, kf.file)
		digest, size, err := pack.FileDigest(f)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		out = append(out, imageVolume{Name: volName(digest, kf.kind), File: f, Size: size, Kind: kf.kind})
	}
	return out, nil
}

func volName(digest, kind string) string {
	return "unikfile-image-" + digest[:min(40, len(digest))] + "." + kind
}

// sweepOrphans removes domains this client booted for the same app that
// no record knows of (their booter died after its record was lost): not
// this boot's, not one it replaces.
func (b *booting) sweepOrphans(ctx context.Context) error {
	doms, _, err := b.c.ConnectListAllDomains(1, 0)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	keep := map[string]bool{b.spec.ID: true}
	for _, r := range b.spec.Replaces {
		keep[r.ID] = true
	}
	for _, d := range doms {
		x, err := b.c.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
		if err != nil {
			continue
		}
		m, ok := parseMetadata(x)
		if !ok || keep[m.ID] || m.Client != b.p.client || m.Project != b.spec.Project || m.Target != b.spec.Target.Name || m.App != b.app {
			continue
		}
		cfg := Config{URI: b.s.URI, Pool: m.Pool, Domain: d.Name, ConsoleVolume: consoleVolume(m.ID),
			OverlayVolume: overlayVolume(m.ID), ImageVolumes: m.Volumes, Metadata: m}
		if _, err := b.p.removeDomain(ctx, b.c, cfg, "", false); err != nil {
			return fmt.Errorf("remove orphan domain %s: %w", d.Name, err)
		}
		b.say("removed domain %s, left by an interrupted unikfile", d.Name)
	}
	return nil
}

// uploadImages uploads the image volumes the pool lacks and sets the
// machine's paths: the image's, and those of the instance's own console
// log and (for disks) overlay, which are created once the domain that
// names them is defined (so that a kill never leaves them without a
// domain that says whose they are). The image volumes stay locked until
// the domain is defined, so that no concurrent stop deletes them as
// unused.
func (b *booting) uploadImages(ctx context.Context, vols []imageVolume) error {
	b.unlockVol = b.p.vols.lock(lockKeys(b.c, b.pl, b.cfg.ImageVolumes)...)
	var paths []string
	for _, v := range vols {
		path, _, err := b.pl.ensure(ctx, v, b.say)
		if err != nil {
			return err
		}
		paths = append(paths, path)
	}
	if err := b.failAt("upload"); err != nil {
		return err
	}
	if b.pl.dir == "" {
		return fmt.Errorf("storage pool %s has no target path", b.pl.name)
	}
	m := &b.cfg.Machine
	m.ConsoleLog = filepath.Join(b.pl.dir, b.cfg.ConsoleVolume)
	img := b.spec.Image
	if !isDisk(img) {
		m.Kernel, m.Cmdline = paths[0], img.Cmdline
		if len(paths) > 1 {
			m.Initrd = paths[1]
		}
		return nil
	}
	m.Disk = filepath.Join(b.pl.dir, b.cfg.OverlayVolume)
	m.UEFI = img.Boot == pack.BootUEFI
	b.backing = paths[0]
	b.size = uint64(img.VirtualSize)
	if b.size == 0 {
		b.size = uint64(vols[0].Size)
	}
	return nil
}

// instanceVolumes creates the console log and the overlay, where the
// domain expects them.
func (b *booting) instanceVolumes() error {
	m := b.cfg.Machine
	_ = b.pl.removeConsole(b.cfg.ConsoleVolume) // a leftover would be read as this boot's
	cv, err := b.pl.create(b.cfg.ConsoleVolume, 0, "", "")
	if err != nil {
		return err
	}
	if path, err := b.pl.path(cv); err != nil || path != m.ConsoleLog {
		return fmt.Errorf("console volume %s is at %s, not in the pool's folder %s (%v)", b.cfg.ConsoleVolume, path, b.pl.dir, err)
	}
	if m.Disk == "" {
		return nil
	}
	_ = b.pl.remove(b.cfg.OverlayVolume)
	ov, err := b.pl.create(b.cfg.OverlayVolume, b.size, b.backing, b.spec.Image.Format)
	if err != nil {
		return err
	}
	if path, err := b.pl.path(ov); err != nil || path != m.Disk {
		return fmt.Errorf("overlay volume %s is at %s, not in the pool's folder %s (%v)", b.cfg.OverlayVolume, path, b.pl.dir, err)
	}
	return nil
}

func (b *booting) failAt(step string) error {
	if b.p.failAfter != nil {
		return b.p.failAfter(step)
	}
	return nil
}

// define defines the domain (persistent, so that a domain that shut off
// keeps its state and console for ps and logs until unikfile removes it).
func (b *booting) define() error {
	defer b.unlock()
	x, err := domainXML(b.cfg.Domain, b.cfg.Machine, b.cfg.Metadata)
	if err != nil {
		return err
	}
	if _, err := b.c.DomainLookupByName(b.cfg.Domain); err == nil {
		return fmt.Errorf("a domain named %s already exists on %s", b.cfg.Domain, b.s.URI)
	}
	dom, err := b.c.DomainDefineXMLFlags(x, golibvirt.DomainDefineValidate)
	if err != nil {
		return fmt.Errorf("define domain %s: %w\ndomain XML:\n%s", b.cfg.Domain, err, x)
	}
	b.dom = dom
	b.cfg.UUID = formatUUID(dom.UUID)
	return b.failAt("define")
}

func (b *booting) unlock() {
	if b.unlockVol != nil {
		b.unlockVol()
		b.unlockVol = nil
	}
}

func formatUUID(u golibvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// start starts the domain paused, adds its host port forwards, and lets
// it run.
func (b *booting) start(fw []lang.Forward) error {
	if _, err := b.c.DomainCreateWithFlags(b.dom, uint32(golibvirt.DomainStartPaused)); err != nil {
		return fmt.Errorf("start domain %s: %w", b.cfg.Domain, err)
	}
	for i, f := range fw {
		temp := f.Host != b.final[i].Host
		for try := 0; ; try++ {
			err := addForward(b.c, b.dom, f)
			if err == nil {
				break
			}
			if !temp {
				return &deploy.PortInUseError{App: b.app, Bind: f.Bind, Port: f.Host, Guest: f.Guest, Err: err}
			}
			if try >= 10 {
				return fmt.Errorf("no free temporary host port on %s: %w", b.s.URI, err)
			}
			if f.Host, err = tempPort(f.Bind, b.c.Local); err != nil {
				return err
			}
		}
		b.cfg.Forwards = append(b.cfg.Forwards, f)
	}
	if err := b.c.DomainResume(b.dom); err != nil {
		return fmt.Errorf("resume domain %s: %w", b.cfg.Domain, err)
	}
	return b.failAt("start")
}

// ports are where the app is reached now, for the record: the forwards
// (at the address this host reaches them on), or the guest's own address.
func (b *booting) ports() []state.Port {
	if b.s.User() {
		out := make([]state.Port, len(b.cfg.Forwards))
		for i, f := range b.cfg.Forwards {
			addr := reach(b.c, f.Bind)
			if addr == "" {
				addr = f.Bind
			}
			out[i] = state.Port{Bind: addr, Host: f.Host, Guest: f.Guest}
		}
		return out
	}
	if b.cfg.Address == "" {
		return nil
	}
	var out []state.Port
	for _, g := range b.spec.Image.Ports {
		out = append(out, state.Port{Bind: b.cfg.Address, Host: g, Guest: g})
	}
	return out
}

// readConsole feeds what the console gained to the scanner.
func (b *booting) readConsole() {
	if b.cr == nil {
		b.cr = &consoleReader{name: b.cfg.ConsoleVolume}
	}
	b.cr.pl = b.pl
	data, _ := b.cr.next()
	_, _ = b.con.Write(data)
}

// waitReady returns (nil, nil) once the instance is ready, and otherwise
// what Boot returns.
func (b *booting) waitReady(ctx context.Context) (*state.Instance, error) {
	timeout := b.spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeoutTCG
		if b.cfg.Machine.Type == "kvm" {
			timeout = DefaultTimeoutKVM
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(b.p.poll())
	defer tick.Stop()
	var lastLease time.Time
	for {
		b.readConsole()
		if b.con.Exit() != nil {
			return b.exitedEarly(ctx)
		}
		if !b.s.User() && b.cfg.Address == "" {
			if a := b.con.Address(); a != "" {
				b.cfg.Address = a
			} else if time.Since(lastLease) > 2*time.Second {
				lastLease = time.Now()
				b.cfg.Address = leaseAddress(b.c, b.dom)
			}
		}
		if b.con.Ready() && b.portsAnswer() == nil {
			return nil, nil
		}
		if ctx.Err() == nil && !domainActive(b.c, b.dom) {
			b.readConsole()
			b.con.Flush()
			if b.con.Exit() != nil {
				return b.exitedEarly(ctx)
			}
			return nil, b.fail(ctx, fmt.Errorf("domain %s stopped before the app was ready (virsh destroy, or a crash: see libvirt's log of it, /var/log/libvirt/qemu/%s.log on the libvirt host)\nlast console lines:\n%s", b.cfg.Domain, b.cfg.Domain, b.con.Tail()))
		}
		select {
		case <-ctx.Done():
			return nil, b.fail(ctx, ctx.Err())
		case <-timer.C:
			why := "the guest did not print that it was ready"
			if b.con.Ready() {
				why = fmt.Sprintf("the guest is ready but its port does not answer: %v", b.portsAnswer())
			}
			return nil, b.fail(ctx, fmt.Errorf("not ready after %s (domain type %s): %s\nlast console lines:\n%s", timeout, b.cfg.Machine.Type, why, b.con.Tail()))
		case <-tick.C:
		}
	}
}

// portsAnswer connects to every port this host can reach.
func (b *booting) portsAnswer() error {
	var addrs []string
	if b.s.User() {
		for _, f := range b.cfg.Forwards {
			if a := reach(b.c, f.Bind); a != "" {
				addrs = append(addrs, net.JoinHostPort(a, strconv.Itoa(f.Host)))
			}
		}
	} else if b.c.Local && b.cfg.Address != "" {
		for _, g := range b.spec.Image.Ports {
			addrs = append(addrs, net.JoinHostPort(b.cfg.Address, strconv.Itoa(g)))
		}
	}
	for _, a := range addrs {
		conn, err := net.DialTimeout("tcp", a, portDialTimeout)
		if err != nil {
			return err
		}
		_ = conn.Close()
	}
	return nil
}

// leaseAddress is the guest's IPv4 address from its network's DHCP
// leases, or "".
func leaseAddress(c *conn, dom golibvirt.Domain) string {
	ifaces, err := c.DomainInterfaceAddresses(dom, uint32(golibvirt.DomainInterfaceAddressesSrcLease), 0)
	if err != nil {
		return ""
	}
	for _, i := range ifaces {
		for _, a := range i.Addrs {
			if ip := net.ParseIP(a.Addr); ip != nil && ip.To4() != nil {
				return a.Addr
			}
		}
	}
	return ""
}

// exitedEarly handles an exit marker before readiness: the guest powers
// off by itself; the instance is returned as exited, its domain and
// console kept for logs.
func (b *booting) exitedEarly(ctx context.Context) (*state.Instance, error) {
	deadline := time.Now().Add(exitGrace)
	for domainActive(b.c, b.dom) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	if domainActive(b.c, b.dom) {
		_ = b.c.DomainDestroyFlags(b.dom, golibvirt.DomainDestroyDefault)
	}
	b.readConsole()
	b.con.Flush()
	b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
	return b.inst, fmt.Errorf("exited with status %d before it was ready; last console lines:\n%s", *b.con.Exit(), b.con.Tail())
}

// fail removes whatever this boot created (through a connection of its
// own: ctx may be what ended) and returns err.
func (b *booting) fail(ctx context.Context, err error) error {
	b.unlock()
	if !b.created {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	c, cerr := connect(cctx, b.s.URI)
	if cerr == nil {
		defer c.Close()
		_, cerr = b.p.removeDomain(cctx, c, b.cfg, "", false)
	}
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("and removing what the boot created failed: %w; unikfile down removes it", cerr))
	}
	_ = os.RemoveAll(b.spec.RunDir)
	return err
}

// takeOverPorts moves the forwards that booted on temporary ports to the
// app's real ones, after the instances being replaced have let go of them.
func (b *booting) takeOverPorts(ctx context.Context) error {
	var moves []int
	for i, f := range b.cfg.Forwards {
		if f.Host != b.final[i].Host {
			moves = append(moves, i)
		}
	}
	if len(moves) == 0 {
		return nil
	}
	released := b.releaseReplaced()
	for _, i := range moves {
		f, to := b.cfg.Forwards[i], b.final[i]
		if _, err := removeForward(b.c, b.dom, f); err != nil {
			b.restore(released)
			return err
		}
		if err := addForward(b.c, b.dom, to); err != nil {
			_ = addForward(b.c, b.dom, f)
			b.restore(released)
			return &deploy.PortInUseError{App: b.app, Bind: to.Bind, Port: to.Host, Guest: to.Guest, Err: err}
		}
		b.cfg.Forwards[i] = to
	}
	return b.portsAnswer()
}

type released struct {
	dom golibvirt.Domain
	fw  lang.Forward
}

// releaseReplaced removes the host port forwards of the replaced domains
// on the same libvirt host that this one takes over.
func (b *booting) releaseReplaced() []released {
	var out []released
	for _, inst := range b.spec.Replaces {
		if inst.Provider != Name {
			continue
		}
		cfg, ok, _ := configOf(inst)
		if !ok || cfg.URI != b.s.URI {
			continue
		}
		dom, err := b.c.DomainLookupByName(cfg.Domain)
		if err != nil {
			continue
		}
		for _, f := range cfg.Forwards {
			if !slices.ContainsFunc(b.final, func(g lang.Forward) bool { return g.Host == f.Host }) {
				continue
			}
			if ok, err := removeForward(b.c, dom, f); err == nil && ok {
				out = append(out, released{dom, f})
			}
		}
	}
	return out
}

func (b *booting) restore(rs []released) {
	for _, r := range rs {
		_ = addForward(b.c, r.dom, r.fw)
	}
}

// follow copies the console until the guest exits or ctx ends (which
// stops it).
func (b *booting) follow(ctx context.Context) (*state.Instance, error) {
	tick := time.NewTicker(b.p.poll())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*stopGrace)
			defer cancel()
			c, err := connect(sctx, b.s.URI)
			if err != nil {
				return b.inst, err
			}
			defer c.Close()
			if dom, err := c.DomainLookupByName(b.cfg.Domain); err == nil {
				if pl, err := openPool(c, b.cfg.Pool); err == nil && b.p.watchesPowerButton(pl, b.cfg) {
					_ = c.DomainShutdownFlags(dom, golibvirt.DomainShutdownAcpiPowerBtn)
					deadline := time.Now().Add(stopGrace)
					for domainActive(c, dom) && time.Now().Before(deadline) {
						time.Sleep(200 * time.Millisecond)
					}
				}
				if domainActive(c, dom) {
					_ = c.DomainDestroyFlags(dom, golibvirt.DomainDestroyDefault)
				}
				b.c, b.pl = c, &pool{c: c, p: b.pl.p, name: b.pl.name}
				b.readConsole()
			}
			b.con.Flush()
			if b.con.Exit() != nil {
				b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
			} else {
				b.inst.State = state.Stopped
			}
			return b.inst, nil
		case <-tick.C:
		}
		b.readConsole()
		if !domainActive(b.c, b.dom) {
			b.readConsole()
			b.con.Flush()
			if b.con.Exit() != nil {
				b.inst.State, b.inst.ExitStatus = state.Exited, b.con.Exit()
				return b.inst, nil
			}
			b.inst.State = state.Failed
			return b.inst, fmt.Errorf("domain %s stopped before the app exited (virsh destroy, `unikfile down`, or a crash)\nlast console lines:\n%s", b.cfg.Domain, b.con.Tail())
		}
	}
}

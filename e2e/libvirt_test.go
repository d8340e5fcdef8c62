package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

// startLibvirt starts the test's own libvirtd and virtlogd (Debian's, in a
// mount namespace of their own), stopped when the test ends.
func startLibvirt(t *testing.T) *testenv.Libvirt {
	t.Helper()
	needBoot(t)
	if m := testenv.LibvirtMissing(); m != "" {
		t.Skip(m)
	}
	lv, err := testenv.StartLibvirt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lv.Stop)
	return lv
}

// libvirtHello is examples/hello with a libvirt target: TCG, user-mode
// networking forwarding 127.0.0.1:port, the given URI, pool and extra
// target lines (format, boot).
func libvirtHello(t *testing.T, lv *testenv.Libvirt, uri string, port int, extra string) *project {
	t.Helper()
	files := map[string]string{"Unikfile": libvirtUnikfile(uri, lv.Pool, port, extra)}
	for _, f := range []string{"main.go", "go.mod"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
	}
	return newProject(t, files)
}

func libvirtUnikfile(uri, pool string, port int, extra string) string {
	return fmt.Sprintf(`app "hello" {
  source   = "."
  language = "go"
  args     = ["-listen", ":8080"]
  ports    = [8080]
  memory   = "256MiB"
}

target "lab" {
  provider = "libvirt"
  apps     = [app.hello]
  %s
  libvirt {
    uri        = %q
    pool       = %q
    network    = "user"
    accel      = "tcg"
    host_ports = { 8080 = %d }
  }
}
`, extra, uri, pool, port)
}

func domainsAndVolumes(t *testing.T, lv *testenv.Libvirt) ([]string, []string) {
	t.Helper()
	ctx := context.Background()
	doms, err := lv.Domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := lv.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return doms, vols
}

// TestLibvirtUpUnchangedEditDestroyDown goes through a user's day with a
// local libvirtd: up boots examples/hello as a direct-kernel-boot domain
// and it answers; a no-change up touches nothing; an edit replaces it and
// leaves no domain or volume of the old one; a domain destroyed with virsh
// is reported by ps and replaced by the next up; down leaves nothing.
func TestLibvirtUpUnchangedEditDestroyDown(t *testing.T) {
	lv := startLibvirt(t)
	port := freePort(t)
	p := libvirtHello(t, lv, lv.URI, port, `format = "kernel+initrd"`)

	r := p.ok("up", "lab")
	if !strings.Contains(get(t, port), "Hello from a unikernel!") {
		t.Fatal("no hello")
	}
	if !strings.Contains(r.stderr, "uploading kernel") || !strings.Contains(r.stderr, "uploading initrd") {
		t.Errorf("up printed no upload progress:\n%s", r.stderr)
	}
	insts := p.ps()
	if len(insts) != 1 || insts[0].State != "running" || len(insts[0].Ports) != 1 || insts[0].Ports[0].Host != port {
		t.Fatalf("ps after up: %+v", insts)
	}
	first := insts[0]
	doms, vols := domainsAndVolumes(t, lv)
	if !slices.Equal(doms, []string{"unikfile-" + first.ID}) {
		t.Fatalf("domains after up: %v", doms)
	}
	if len(vols) != 3 { // kernel, initrd, console log
		t.Fatalf("volumes after up: %v", vols)
	}
	xml, err := lv.Virsh(context.Background(), "dumpxml", doms[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<domain type='qemu'", "<id>" + first.ID + "</id>", "<app>hello</app>", "<image>" + first.ImageDigest + "</image>"} {
		if !strings.Contains(xml, want) {
			t.Errorf("domain XML lacks %s:\n%s", want, xml)
		}
	}
	uuid, _ := lv.Virsh(context.Background(), "domuuid", doms[0])
	domID, _ := lv.Virsh(context.Background(), "domid", doms[0])

	// No change: the same domain, the same QEMU (its id would change on a
	// restart), nothing uploaded.
	r = p.ok("up", "lab")
	if !strings.Contains(r.stdout+r.stderr, "unchanged") || strings.Contains(r.stderr, "uploading") {
		t.Errorf("a no-change up did something:\n%s\n%s", r.stdout, r.stderr)
	}
	uuid2, _ := lv.Virsh(context.Background(), "domuuid", doms[0])
	domID2, _ := lv.Virsh(context.Background(), "domid", doms[0])
	if uuid2 != uuid || domID2 != domID {
		t.Errorf("a no-change up touched the domain: uuid %s -> %s, id %s -> %s", uuid, uuid2, domID, domID2)
	}

	// An edit: a new initrd, the same kernel volume; the old domain and the
	// old initrd volume are gone.
	main, _ := os.ReadFile(filepath.Join(p.dir, "main.go"))
	p.write("main.go", strings.Replace(string(main), "Hello from a unikernel!", "Hello again from libvirt!", 1))
	r = p.ok("up", "lab")
	if !strings.Contains(get(t, port), "Hello again from libvirt!") {
		t.Fatal("the edit does not answer")
	}
	if strings.Contains(r.stderr, "uploading kernel") || !strings.Contains(r.stderr, "uploading initrd") {
		t.Errorf("an edit should upload only the initrd:\n%s", r.stderr)
	}
	insts = p.ps()
	if len(insts) != 1 || insts[0].ID == first.ID || insts[0].State != "running" {
		t.Fatalf("ps after the edit: %+v", insts)
	}
	second := insts[0]
	doms, vols2 := domainsAndVolumes(t, lv)
	if !slices.Equal(doms, []string{"unikfile-" + second.ID}) {
		t.Fatalf("domains after the edit: %v", doms)
	}
	if len(vols2) != 3 || slices.Equal(vols2, vols) {
		t.Fatalf("volumes after the edit: %v (before: %v)", vols2, vols)
	}

	// Destroyed behind unikfile's back: ps says so; up boots a new one.
	if _, err := lv.Virsh(context.Background(), "destroy", doms[0]); err != nil {
		t.Fatal(err)
	}
	insts = p.ps()
	if len(insts) != 1 || insts[0].State != "failed" {
		t.Fatalf("ps after virsh destroy: %+v", insts)
	}
	p.ok("up", "lab")
	if !strings.Contains(get(t, port), "Hello again from libvirt!") {
		t.Fatal("no answer after up replaced the destroyed domain")
	}
	if insts = p.ps(); len(insts) != 1 || insts[0].State != "running" || insts[0].ID == second.ID {
		t.Fatalf("ps after up: %+v", insts)
	}

	r = p.ok("logs", "hello")
	if !strings.Contains(r.stdout, "unikfile-init: ready") {
		t.Errorf("logs lacks the ready marker:\n%s", r.stdout)
	}

	p.ok("down", "lab")
	if doms, vols := domainsAndVolumes(t, lv); len(doms) != 0 || len(vols) != 0 {
		t.Fatalf("down left domains %v and volumes %v", doms, vols)
	}
	if insts := p.ps(); len(insts) != 0 {
		t.Fatalf("ps after down: %+v", insts)
	}
}

// TestLibvirtRemoteQCOW2 boots examples/hello as a qcow2 disk, by BIOS and
// by UEFI, through qemu+tcp:// (the image goes through the stream upload
// of libvirt's remote protocol), and gets its answer.
func TestLibvirtRemoteQCOW2(t *testing.T) {
	lv := startLibvirt(t)
	for _, boot := range []string{"bios", "uefi"} {
		t.Run(boot, func(t *testing.T) {
			if boot == "uefi" {
				if _, err := os.Stat("/usr/share/OVMF/OVMF_CODE_4M.fd"); err != nil {
					t.Skip("OVMF is missing: run scripts/install-deps")
				}
			}
			port := freePort(t)
			p := libvirtHello(t, lv, lv.TCPURI, port, fmt.Sprintf("format = \"qcow2\"\n  boot = %q", boot))
			r := p.ok("up", "lab")
			if !strings.Contains(r.stderr, "uploading qcow2 disk") {
				t.Errorf("no upload progress:\n%s", r.stderr)
			}
			if !strings.Contains(get(t, port), "Hello from a unikernel!") {
				t.Fatal("no hello")
			}
			insts := p.ps()
			if len(insts) != 1 || insts[0].State != "running" {
				t.Fatalf("ps: %+v", insts)
			}
			xml, err := lv.Virsh(context.Background(), "dumpxml", "unikfile-"+insts[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if boot == "uefi" && !strings.Contains(xml, "OVMF") {
				t.Errorf("a UEFI domain without OVMF:\n%s", xml)
			}
			p.ok("down", "lab")
			if doms, vols := domainsAndVolumes(t, lv); len(doms) != 0 || len(vols) != 0 {
				t.Fatalf("down left domains %v and volumes %v", doms, vols)
			}
		})
	}
}

// TestLibvirtMissingThings: no libvirtd at the URI, a missing pool, a
// missing network each exit 1 with what to do.
func TestLibvirtMissingThings(t *testing.T) {
	lv := startLibvirt(t)
	port := freePort(t)
	cases := []struct{ name, uri, pool, network, want string }{
		{"no libvirtd", "qemu:///system?socket=" + filepath.Join(t.TempDir(), "none"), lv.Pool, "user", "no libvirtd answers at"},
		{"no pool", lv.URI, "nosuchpool", "user", `has no storage pool "nosuchpool"`},
		{"no network", lv.URI, lv.Pool, "nosuchnet", `has no network "nosuchnet"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := libvirtUnikfile(c.uri, c.pool, port, `format = "kernel+initrd"`)
			if c.network != "user" {
				u = strings.Replace(u, `network    = "user"`, fmt.Sprintf("network    = %q", c.network), 1)
				u = strings.Replace(u, fmt.Sprintf("host_ports = { 8080 = %d }", port), "", 1)
			}
			p := libvirtHello(t, lv, c.uri, port, "")
			p.write("Unikfile", u)
			r := p.run("up", "lab")
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", r.code, c.want, r.stderr)
			}
			if doms, vols := domainsAndVolumes(t, lv); len(doms) != 0 || len(vols) != 0 {
				t.Fatalf("a failed up left domains %v and volumes %v", doms, vols)
			}
		})
	}
}

// TestLibvirtKilledUpLeavesNoOrphan kills `up` with -9 while its domain
// boots: ps does not call it running and the next up removes it (through
// the record the killed up left); killed again and its records wiped, the
// next up still finds the orphan by the domain's metadata and removes it.
// Either way one domain is left, it answers, and down leaves nothing.
func TestLibvirtKilledUpLeavesNoOrphan(t *testing.T) {
	lv := startLibvirt(t)
	port := freePort(t)
	p := libvirtHello(t, lv, lv.URI, port, `format = "kernel+initrd"`)
	p.ok("build", "hello") // so that the kill lands during the deploy

	for _, wipe := range []bool{false, true} {
		r := p.start("up", "lab")
		r.waitLine("deploy lab: hello: uploaded initrd")
		// Kill it once its domain exists.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if doms, _ := lv.Domains(context.Background()); len(doms) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no domain a minute after the upload")
			}
		}
		r.signal(syscall.SIGKILL, true)
		r.wait()
		if insts := p.ps(); len(insts) == 1 && insts[0].State == "running" {
			t.Fatalf("ps calls the killed up's instance running: %+v", insts)
		}
		if wipe {
			ents, _ := os.ReadDir(p.stateDir)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(p.stateDir, e.Name()))
			}
		}
		out := p.ok("up", "lab")
		if wipe && !strings.Contains(out.stderr, "left by an interrupted unikfile") {
			t.Errorf("up did not say it removed the orphan:\n%s", out.stderr)
		}
		if !strings.Contains(get(t, port), "Hello from a unikernel!") {
			t.Fatal("no hello")
		}
		insts := p.ps()
		doms, _ := domainsAndVolumes(t, lv)
		if len(insts) != 1 || !slices.Equal(doms, []string{"unikfile-" + insts[0].ID}) {
			t.Fatalf("after the kill (wipe %v) and up: instances %+v, domains %v", wipe, insts, doms)
		}
		p.ok("down", "lab")
		if doms, vols := domainsAndVolumes(t, lv); len(doms) != 0 || len(vols) != 0 {
			t.Fatalf("down left domains %v and volumes %v", doms, vols)
		}
	}
}

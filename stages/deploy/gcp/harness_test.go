package gcp

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/gcp/gcefake"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
	"github.com/unikfile/unikfile/state"
)

const (
	testProject = "test-project"
	testZone    = "europe-west1-b"
	testBucket  = "unikfile-images"
)

// env is a fake Compute Engine and Cloud Storage, a provider pointed at
// them through the real clients, and images to boot.
type env struct {
	t    *testing.T
	gce  *gcefake.Server
	gcs  *gcefake.Storage
	p    *Provider
	dir  string
	mu   sync.Mutex
	said []string
	// guest, when set, stands in for every instance's guest.
	guest func(inst *compute.Instance, features []string) gcefake.Guest
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.gcs = gcefake.NewStorage(nil, testBucket)
	e.gce = gcefake.New(gcefake.Options{
		Objects: e.gcs.Open,
		Guest: func(inst *compute.Instance, features []string) gcefake.Guest {
			e.mu.Lock()
			g := e.guest
			e.mu.Unlock()
			if g != nil {
				return g(inst, features)
			}
			return gcefake.DefaultGuest(inst, features)
		},
	})
	t.Cleanup(func() { e.gce.Close(); e.gcs.Close() })
	e.p = e.provider()
	return e
}

// provider is a new provider of the env (another process, as it were).
func (e *env) provider() *Provider {
	return &Provider{
		ComputeOptions: []option.ClientOption{option.WithEndpoint(e.gce.Endpoint()), option.WithoutAuthentication()},
		StorageOptions: []option.ClientOption{option.WithEndpoint(e.gcs.Endpoint()), option.WithoutAuthentication()},
		Poll:           5 * time.Millisecond, Backoff: 2 * time.Millisecond, ChunkSize: 256 << 10,
		Getenv: func(string) string { return "" }, Host: "testhost",
	}
}

func (e *env) setGuest(g func(inst *compute.Instance, features []string) gcefake.Guest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.guest = g
}

func testSettings() *Settings {
	return &Settings{Project: testProject, Zone: testZone, Bucket: testBucket, MachineType: "e2-small",
		Network: DefaultNetwork, NIC: NICVirtio, Ingress: []string{"0.0.0.0/0"}, ExternalIP: true}
}

func testTarget(s *Settings) *lang.Target {
	return &lang.Target{Name: "prod", Provider: Name, Apps: []string{"hello"}, Settings: s, Format: format.GCE, Boot: pack.BootBIOS}
}

// image makes a gce image of a small raw disk (a boot signature and some
// random data; for uefi a GPT made by sfdisk) through format.Convert, the
// writer unikfile uses. seed makes different images.
func (e *env) image(boot string, seed uint64) (*pack.Image, string) {
	t := e.t
	t.Helper()
	rawDir := filepath.Join(e.dir, "raw-"+boot+"-"+string(rune('a'+seed)))
	os.MkdirAll(rawDir, 0o755)
	raw := filepath.Join(rawDir, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(8 << 20)
	f.Close()
	if boot == pack.BootUEFI {
		sfdisk, err := exec.LookPath("sfdisk")
		if err != nil {
			t.Skip("sfdisk missing (apt-get install fdisk)")
		}
		cmd := exec.Command(sfdisk, "--no-reread", "--no-tell-kernel", raw)
		cmd.Stdin = strings.NewReader("label: gpt\nsize=4MiB, type=uefi\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
	}
	f, _ = os.OpenFile(raw, os.O_RDWR, 0)
	data := make([]byte, 256<<10)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	f.WriteAt(data, 2<<20)
	var sig [2]byte
	binary.LittleEndian.PutUint16(sig[:], 0xaa55)
	f.WriteAt(sig[:], 510)
	f.Close()
	src := &pack.Image{App: "hello", Base: "linux", Format: format.Raw, Disk: "disk.raw", Boot: boot, Digest: "raw" + string(rune('a'+seed)),
		MemoryMiB: 256, Ports: []int{8080}, KernelVersion: "6.1.0-test"}
	out := filepath.Join(e.dir, "gce-"+boot+"-"+string(rune('a'+seed)))
	os.MkdirAll(out, 0o755)
	img, err := format.Convert(context.Background(), src, rawDir, format.GCE, out)
	if err != nil {
		t.Fatal(err)
	}
	return img, out
}

// spec is a boot of img for target.
func (e *env) spec(target *lang.Target, img *pack.Image, dir string) deploy.Spec {
	id := state.NewID("hello")
	return deploy.Spec{
		Project: "/src/project", Target: target, Image: img, ImageDir: dir,
		RunDir: filepath.Join(e.dir, "run", id), ID: id, Timeout: 20 * time.Second,
		Progress: func(msg string) {
			e.mu.Lock()
			e.said = append(e.said, msg)
			e.mu.Unlock()
			e.t.Log("progress: " + msg)
		},
	}
}

func (e *env) saidContaining(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.said, func(m string) bool { return strings.Contains(m, s) })
}

// nothingLeft fails unless GCE and Cloud Storage hold nothing but the
// bucket (and what keep names).
func (e *env) nothingLeft(keep ...string) {
	e.t.Helper()
	var left []string
	for _, n := range e.gce.Images() {
		left = append(left, "image "+n)
	}
	for _, n := range e.gce.Instances() {
		left = append(left, "instance "+n)
	}
	for _, n := range e.gce.Firewalls() {
		left = append(left, "firewall "+n)
	}
	for _, n := range e.gcs.Objects() {
		left = append(left, "object "+n)
	}
	for _, b := range e.gcs.Buckets() {
		if b != testBucket {
			left = append(left, "bucket "+b)
		}
	}
	left = slices.DeleteFunc(left, func(s string) bool { return slices.Contains(keep, s) })
	if len(left) > 0 {
		e.t.Errorf("left behind: %s", strings.Join(left, ", "))
	}
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

package gcefake

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/format"
)

// fixture is the fake driven by the real compute and storage clients.
type fixture struct {
	s   *Server
	st  *Storage
	c   *compute.Service
	gcs *storage.Client
}

func newFixture(t *testing.T, step time.Duration) *fixture {
	st := NewStorage(nil, "b")
	s := New(Options{Objects: st.Open, Step: step})
	t.Cleanup(func() { s.Close(); st.Close() })
	c, err := compute.NewService(context.Background(), option.WithEndpoint(s.Endpoint()), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	g, err := storage.NewClient(context.Background(), option.WithEndpoint(st.Endpoint()), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s, st, c, g}
}

// archive is a gce archive holding name of size bytes (a boot signature at
// byte 510), in tar format f; one whose header is wrong holds the header
// only (the fake stops there).
func archive(t *testing.T, name string, size int64, f tar.Format) []byte {
	if name == "disk.raw" && f == tar.FormatGNU && size == 1<<30 {
		return gceArchive(t)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, Format: f}); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	binary.LittleEndian.PutUint16(mbr[510:], 0xaa55)
	tw.Write(mbr)
	if name != "disk.raw" || f != tar.FormatGNU {
		tw.Flush()
		zw.Close()
		return buf.Bytes()
	}
	zero := make([]byte, 1<<20)
	for left := size - 512; left > 0; {
		n := min(left, int64(len(zero)))
		tw.Write(zero[:n])
		left -= n
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func (f *fixture) put(t *testing.T, object string, data []byte) string {
	w := f.gcs.Bucket("b").Object(object).NewWriter(context.Background())
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return "https://storage.googleapis.com/b/" + object
}

func code(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

func TestOperationsGoPendingRunningDone(t *testing.T) {
	// Long steps, so that a loaded machine's polls still see each status.
	f := newFixture(t, 500*time.Millisecond)
	src := f.put(t, "ok.tar.gz", archive(t, "disk.raw", 1<<30, tar.FormatGNU))
	op, err := f.c.Images.Insert("test-project", &compute.Image{Name: "img", RawDisk: &compute.ImageRawDisk{Source: src}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	seen := []string{op.Status}
	for op.Status != "DONE" {
		if op, err = f.c.GlobalOperations.Get("test-project", op.Name).Do(); err != nil {
			t.Fatal(err)
		}
		if seen[len(seen)-1] != op.Status {
			seen = append(seen, op.Status)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if strings.Join(seen, " ") != "PENDING RUNNING DONE" || op.Error != nil {
		t.Errorf("statuses %v, error %+v", seen, op.Error)
	}
	img, err := f.c.Images.Get("test-project", "img").Do()
	if err != nil || img.Status != "READY" || img.DiskSizeGb != 1 {
		t.Errorf("image %+v, %v", img, err)
	}
	if _, err := f.c.Images.Insert("test-project", &compute.Image{Name: "img", RawDisk: &compute.ImageRawDisk{Source: src}}).Do(); code(err) != 409 {
		t.Errorf("a second image of one name: %v", err)
	}
}

// Bad archives are reported inside the DONE operation, and the image is
// not left behind.
func TestImportChecksTheArchive(t *testing.T) {
	f := newFixture(t, 0)
	for name, data := range map[string][]byte{
		"not a whole GiB": archive(t, "disk.raw", 1<<20, tar.FormatGNU),
		"another name":    archive(t, "disk.img", 1<<30, tar.FormatGNU),
		"not GNU tar":     archive(t, "disk.raw", 1<<30, tar.FormatPAX),
		"not gzip":        []byte("plain text"),
	} {
		t.Run(name, func(t *testing.T) {
			src := f.put(t, strings.ReplaceAll(name, " ", "-"), data)
			op, err := f.c.Images.Insert("test-project", &compute.Image{Name: "bad", RawDisk: &compute.ImageRawDisk{Source: src}}).Do()
			if err != nil {
				t.Fatal(err)
			}
			for op.Status != "DONE" {
				if op, err = f.c.GlobalOperations.Wait("test-project", op.Name).Do(); err != nil {
					t.Fatal(err)
				}
			}
			if op.Error == nil || len(op.Error.Errors) != 1 || op.Error.Errors[0].Code != "INVALID_FIELD_VALUE" {
				t.Fatalf("operation error %+v", op.Error)
			}
			t.Log(op.Error.Errors[0].Message)
			if _, err := f.c.Images.Get("test-project", "bad").Do(); code(err) != 404 {
				t.Errorf("the failed image is there: %v", err)
			}
		})
	}
}

func TestStrictAboutRequestsAndStates(t *testing.T) {
	// Long steps: the image stays PENDING while the first checks run.
	f := newFixture(t, 2*time.Second)
	src := f.put(t, "ok.tar.gz", archive(t, "disk.raw", 1<<30, tar.FormatGNU))
	if _, err := f.c.Images.Insert("test-project", &compute.Image{Name: "img", RawDisk: &compute.ImageRawDisk{Source: src}}).RequestId("not-a-uuid").Do(); code(err) != 400 {
		t.Errorf("a bad request ID: %v", err)
	}
	if _, err := f.c.Images.Insert("test-project", &compute.Image{Name: "Bad_Name", RawDisk: &compute.ImageRawDisk{Source: src}}).Do(); code(err) != 400 {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := f.c.Images.Insert("test-project", &compute.Image{Name: "img", RawDisk: &compute.ImageRawDisk{Source: "gs://b/ok.tar.gz"}}).Do(); code(err) != 400 {
		t.Errorf("a gs:// source: %v", err)
	}
	if _, err := f.c.Images.Insert("other-project", &compute.Image{Name: "img", RawDisk: &compute.ImageRawDisk{Source: src}}).Do(); code(err) != 404 {
		t.Errorf("an unknown project: %v", err)
	}
	if _, err := f.c.Images.Insert("test-project", &compute.Image{Name: "img", RawDisk: &compute.ImageRawDisk{Source: src}}).Do(); err != nil {
		t.Fatal(err)
	}
	vm := func(name string) *compute.Instance {
		return &compute.Instance{Name: name, MachineType: "zones/europe-west1-b/machineTypes/e2-small",
			Disks:             []*compute.AttachedDisk{{Boot: true, AutoDelete: true, InitializeParams: &compute.AttachedDiskInitializeParams{SourceImage: "global/images/img"}}},
			NetworkInterfaces: []*compute.NetworkInterface{{Network: "global/networks/default"}}}
	}
	// The image is still PENDING.
	if _, err := f.c.Instances.Insert("test-project", "europe-west1-b", vm("early")).Do(); code(err) != 400 || !strings.Contains(err.Error(), "is not ready") {
		t.Errorf("an instance of a pending image: %v", err)
	}
	if _, err := f.c.Images.Delete("test-project", "img").Do(); code(err) != 400 {
		t.Errorf("deleting a pending image: %v", err)
	}
	for img, _ := f.c.Images.Get("test-project", "img").Do(); img.Status != "READY"; img, _ = f.c.Images.Get("test-project", "img").Do() {
		time.Sleep(5 * time.Millisecond)
	}
	noType := vm("a")
	noType.MachineType = ""
	if _, err := f.c.Instances.Insert("test-project", "europe-west1-b", noType).Do(); code(err) != 400 || !strings.Contains(err.Error(), "machineType") {
		t.Errorf("no machine type: %v", err)
	}
	otherZone := vm("a")
	otherZone.MachineType = "zones/us-central1-a/machineTypes/e2-small"
	if _, err := f.c.Instances.Insert("test-project", "europe-west1-b", otherZone).Do(); code(err) != 400 {
		t.Errorf("a machine type of another zone: %v", err)
	}
	gv := vm("a")
	gv.NetworkInterfaces[0].NicType = "GVNIC"
	if _, err := f.c.Instances.Insert("test-project", "europe-west1-b", gv).Do(); code(err) != 400 || !strings.Contains(err.Error(), "gVNIC") {
		t.Errorf("gVNIC on an image without the feature: %v", err)
	}
	op, err := f.c.Instances.Insert("test-project", "europe-west1-b", vm("a")).Do()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Instances.GetSerialPortOutput("test-project", "europe-west1-b", "a").Do(); code(err) != 400 {
		t.Errorf("the console of a provisioning instance: %v", err)
	}
	for op.Status != "DONE" {
		op, _ = f.c.ZoneOperations.Wait("test-project", "europe-west1-b", op.Name).Do()
	}
	time.Sleep(50 * time.Millisecond) // the stand-in's lines come 0-10 ms after RUNNING
	out, err := f.c.Instances.GetSerialPortOutput("test-project", "europe-west1-b", "a").Port(1).Start(0).Do()
	if err != nil || !strings.Contains(out.Contents, "unikfile-init: ready") || out.Start != 0 || out.Next != int64(len(out.Contents)) {
		t.Fatalf("console %+v, %v", out, err)
	}
	again, _ := f.c.Instances.GetSerialPortOutput("test-project", "europe-west1-b", "a").Start(out.Next).Do()
	if again.Contents != "" || again.Start != out.Next || again.Next != out.Next {
		t.Errorf("reading from next: %+v", again)
	}
	tail, _ := f.c.Instances.GetSerialPortOutput("test-project", "europe-west1-b", "a").Start(-10).Do()
	if len(tail.Contents) != 10 || tail.Start != out.Next-10 {
		t.Errorf("the last 10 bytes: %+v", tail)
	}
	if _, err := f.c.Instances.List("test-project", "europe-west1-b").Filter("name = a").Do(); code(err) != 400 {
		t.Errorf("a filter the fake does not understand: %v", err)
	}
}

// gceArchive is the gce archive of a small disk, as unikfile writes it
// (format.Convert pads it to 1 GiB).
func gceArchive(t *testing.T) []byte {
	dir := t.TempDir()
	disk := make([]byte, 4<<20)
	binary.LittleEndian.PutUint16(disk[510:], 0xaa55)
	os.WriteFile(filepath.Join(dir, "disk.raw"), disk, 0o644)
	raw := &pack.Image{App: "a", Format: format.Raw, Disk: "disk.raw", Boot: pack.BootBIOS, Digest: "x"}
	out := t.TempDir()
	img, err := format.Convert(context.Background(), raw, dir, format.GCE, out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, img.Disk))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

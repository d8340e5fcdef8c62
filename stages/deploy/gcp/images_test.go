package gcp

import (
	"context"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
)

// images --target lists what unikfile imported into the project, with the
// whole digest of the archive each was made from, and nothing else.
func TestImagesListsTheProjectsUnikfileImages(t *testing.T) {
	e := newEnv(t)
	target := testTarget(testSettings())
	if got, err := e.p.Images(context.Background(), target); err != nil || len(got) != 0 {
		t.Fatalf("images of an empty project: %v, %v", got, err)
	}
	img, dir := e.image(pack.BootBIOS, 1)
	if _, err := e.p.Boot(context.Background(), e.spec(target, img, dir)); err != nil {
		t.Fatal(err)
	}
	got, err := e.p.Images(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("images after one boot: %+v", got)
	}
	r := got[0]
	if r.Digest != img.Digest || r.App != "hello" || r.State != "READY" || !strings.HasPrefix(r.ID, "unikfile-") ||
		r.Where != "project "+testProject || r.Created.IsZero() {
		t.Errorf("image %+v: want the archive's digest %s, app hello, READY, its creation time", r, img.Digest)
	}

	e.gce.Deny("compute.images.list")
	if _, err := e.p.Images(context.Background(), target); err == nil || !strings.Contains(err.Error(), "compute.images.list") {
		t.Errorf("a denied list: %v; want the missing permission named", err)
	}
}

package pack

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/unikfile/unikfile/cache"
)

func TestImagesListsCompleteImagesNewestFirst(t *testing.T) {
	cs, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, app string, when time.Time) {
		dir, _, err := cs.Fill(context.Background(), "images", key, func(_ context.Context, dir string) error {
			b, _ := json.Marshal(Image{App: app, Format: FormatKernelInitrd, Digest: "d-" + app})
			if err := os.WriteFile(filepath.Join(dir, "kernel"), make([]byte, 1000), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, ImageFile), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	put("k1", "old", now.Add(-time.Hour))
	put("k2", "new", now)
	// An entry that is not an image (no image.json) is left out.
	if _, _, err := cs.Fill(context.Background(), "images", "k3", func(context.Context, string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := Images(cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Image.App != "new" || got[1].Image.App != "old" {
		t.Fatalf("Images = %+v; want new, then old", got)
	}
	if got[0].Size < 1000 {
		t.Errorf("size %d does not count the image's files", got[0].Size)
	}
}

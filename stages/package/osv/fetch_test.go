package osv

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
)

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// A release served over HTTPS on 127.0.0.1 with the fixture's files, the kernel
// gzip-compressed as OSv's releases publish it.
func TestFetchKernel(t *testing.T) {
	fix := testenv.Fixture(t, "osv")
	loader, _ := os.ReadFile(filepath.Join(fix, LoaderFile))
	environ, _ := os.ReadFile(filepath.Join(fix, EnvironFile))
	boot, _ := os.ReadFile(filepath.Join(fix, BootFile))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(loader)
	zw.Close()
	files := map[string][]byte{"/loader.elf.gz": gz.Bytes(), "/libenviron.so": environ, "/loader.img": boot}
	requests := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	rel := Release{Version: "v0.57.0-test", Files: []ReleaseFile{
		{Name: LoaderFile, URL: srv.URL + "/loader.elf.gz", SHA256: sum(gz.Bytes()), Gzip: true},
		{Name: EnvironFile, URL: srv.URL + "/libenviron.so", SHA256: sum(environ)},
		{Name: BootFile, URL: srv.URL + "/loader.img", SHA256: sum(boot)},
	}}
	cacheDir := t.TempDir()
	var said []string
	say := func(s string) { said = append(said, s) }
	k, err := FetchKernel(context.Background(), cacheDir, rel, srv.Client(), say)
	if err != nil {
		t.Fatal(err)
	}
	if k.LoaderDigest != sum(loader) || k.Version != fixtureVersion || k.Boot == "" {
		t.Errorf("fetched %+v", k)
	}
	resolved, err := ResolveKernel("", cacheDir, nil, nil)
	if err != nil || resolved.Digest != k.Digest {
		t.Errorf("the cache's kernel: %+v, %v", resolved, err)
	}
	// Fetching again keeps the entry and downloads nothing.
	before := requests
	if _, err := FetchKernel(context.Background(), cacheDir, rel, srv.Client(), say); err != nil || requests != before {
		t.Errorf("second fetch: %v, %d more requests", err, requests-before)
	}

	// A file that is not the pinned one is refused, and nothing stays.
	bad := rel
	bad.Version = "v-tampered"
	bad.Files = append([]ReleaseFile(nil), rel.Files...)
	bad.Files[1].SHA256 = sum([]byte("another file"))
	other := t.TempDir()
	if _, err := FetchKernel(context.Background(), other, bad, srv.Client(), say); err == nil || !strings.Contains(err.Error(), "is not the published file") {
		t.Errorf("a wrong digest: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(other, "kernels", "osv"))
	if len(entries) != 0 {
		t.Errorf("a refused download left %v", entries)
	}
	// A missing file.
	gone := rel
	gone.Version = "v-gone"
	gone.Files = append([]ReleaseFile(nil), rel.Files...)
	gone.Files[2].URL = srv.URL + "/nothing"
	if _, err := FetchKernel(context.Background(), t.TempDir(), gone, srv.Client(), say); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404: %v", err)
	}
}

func TestReleaseChecks(t *testing.T) {
	good := ReleaseFile{Name: LoaderFile, URL: "https://example.org/k", SHA256: sum(nil)}
	env := ReleaseFile{Name: EnvironFile, URL: "https://example.org/e", SHA256: sum(nil)}
	for _, tc := range []struct {
		rel  Release
		want string
	}{
		{Release{Version: "v1", Files: []ReleaseFile{{Name: LoaderFile, URL: "https://example.org/k"}, env}}, "no sha256 pinned"},
		{Release{Version: "v1", Files: []ReleaseFile{{Name: LoaderFile, URL: "http://example.org/k", SHA256: sum(nil)}, env}}, "not an https URL"},
		{Release{Version: "../x", Files: []ReleaseFile{good, env}}, "cannot name a folder"},
		{Release{Version: "v1", Files: []ReleaseFile{good}}, "lacks"},
		{Release{Version: "v1", Files: []ReleaseFile{good, env, {Name: "other", URL: "https://x/y", SHA256: sum(nil)}}}, "is none of"},
	} {
		if _, err := FetchKernel(context.Background(), t.TempDir(), tc.rel, nil, func(string) {}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.rel, err, tc.want)
		}
	}
	if len(Releases) == 0 {
		_, err := DefaultRelease()
		if !errors.As(err, &NoReleaseError{}) || !strings.Contains(err.Error(), KernelEnv) {
			t.Errorf("no release pinned: %v", err)
		}
	}
}

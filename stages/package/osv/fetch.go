package osv

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/cache"
)

// A Release is an OSv kernel published for download, every file pinned by
// the digest of its bytes as published.
type Release struct {
	// Version names the release and its folder in the kernel cache
	// (kernels/osv/VERSION).
	Version string
	Files   []ReleaseFile
}

// ReleaseFile is one file of a release.
type ReleaseFile struct {
	Name   string // LoaderFile, EnvironFile or BootFile: its name in the cache
	URL    string
	SHA256 string // hex, of the bytes at URL
	Gzip   bool   // the bytes at URL are gzip-compressed
}

// Releases are the OSv releases `unikfile kernel fetch --base osv` can
// download. None is pinned yet: OSv's GitHub releases (for example v0.57.0
// with osv-loader.elf.x86_64.gz) publish no digests that could be checked
// when this table was written, their kernel is older than the one the
// osv base was verified with, and libenviron.so is not among their files.
// A release joins this table with the sha256 of each file, taken from a
// source that can be trusted, never from a first download.
var Releases []Release

// maxDownload bounds one file of a release.
const maxDownload = 512 << 20

// NoReleaseError says no release is pinned and what to do instead.
type NoReleaseError struct{}

func (NoReleaseError) Error() string {
	return "this version of unikfile pins no OSv release to download (OSv's releases publish no digests it could check); " +
		"build the kernel from OSv's sources (https://github.com/cloudius-systems/osv: ./scripts/build fs=rofs image=native-example) and set " +
		KernelEnv + " or osv { kernel = \"...\" } to the folder holding " + LoaderFile + ", " + EnvironFile + " and " + BootFile
}

// DefaultRelease is the newest pinned release.
func DefaultRelease() (Release, error) {
	if len(Releases) == 0 {
		return Release{}, NoReleaseError{}
	}
	return Releases[len(Releases)-1], nil
}

// FetchKernel downloads rel into cacheDir/kernels/osv/VERSION, the layout
// ResolveKernel reads: each file's bytes are checked against its pinned
// digest before they are used, the entry is assembled beside its place
// and renamed in whole, and nothing is left behind on failure. An
// existing complete entry is kept. client nil is http.DefaultClient.
func FetchKernel(ctx context.Context, cacheDir string, rel Release, client *http.Client, say func(string)) (*Kernel, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if err := rel.check(); err != nil {
		return nil, err
	}
	root := filepath.Join(cacheDir, "kernels", "osv")
	dest := filepath.Join(root, rel.Version)
	if k, err := kernelIn(dest, cache.FileDigest); err == nil {
		say(fmt.Sprintf("OSv kernel %s is already in %s", rel.Version, dest))
		return k, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(root, fmt.Sprintf(".%d-fetch-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, f := range rel.Files {
		say(fmt.Sprintf("downloading %s", f.URL))
		if err := download(ctx, client, f, filepath.Join(tmp, f.Name)); err != nil {
			return nil, fmt.Errorf("fetch OSv %s: %s: %w", rel.Version, f.URL, err)
		}
	}
	if _, err := kernelIn(tmp, cache.FileDigest); err != nil {
		return nil, fmt.Errorf("fetch OSv %s: %w", rel.Version, err)
	}
	if err := os.RemoveAll(dest); err != nil { // an incomplete earlier entry
		return nil, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("OSv kernel %s is in %s", rel.Version, dest))
	return kernelIn(dest, cache.FileDigest)
}

func (rel Release) check() error {
	if rel.Version == "" || strings.ContainsAny(rel.Version, "/\\") || strings.HasPrefix(rel.Version, ".") {
		return fmt.Errorf("OSv release version %q cannot name a folder", rel.Version)
	}
	names := map[string]bool{}
	for _, f := range rel.Files {
		switch f.Name {
		case LoaderFile, EnvironFile, BootFile:
		default:
			return fmt.Errorf("OSv release %s: file %q is none of %s, %s, %s", rel.Version, f.Name, LoaderFile, EnvironFile, BootFile)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("OSv release %s: %s has no sha256 pinned (%q); unikfile downloads nothing it cannot check", rel.Version, f.Name, f.SHA256)
		}
		if !strings.HasPrefix(f.URL, "https://") {
			return fmt.Errorf("OSv release %s: %s: %q is not an https URL", rel.Version, f.Name, f.URL)
		}
		names[f.Name] = true
	}
	if !names[LoaderFile] || !names[EnvironFile] {
		return fmt.Errorf("OSv release %s lacks %s or %s", rel.Version, LoaderFile, EnvironFile)
	}
	return nil
}

// download writes f's content to out: the bytes are hashed as they come
// and must match f.SHA256 before they are decompressed or kept.
func download(ctx context.Context, client *http.Client, f ReleaseFile, out string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	raw := out + ".download"
	fh, err := os.Create(raw)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fh, h), io.LimitReader(resp.Body, maxDownload+1))
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n > maxDownload {
		return fmt.Errorf("larger than %d MiB", maxDownload>>20)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(f.SHA256) {
		return fmt.Errorf("sha256 %s, but %s is pinned: the download is not the published file (nothing was kept)", got, f.SHA256)
	}
	if !f.Gzip {
		return os.Rename(raw, out)
	}
	defer os.Remove(raw)
	in, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.LimitReader(zr, maxDownload)); err != nil {
		dst.Close()
		return fmt.Errorf("gunzip: %w", err)
	}
	if err := zr.Close(); err != nil && !errors.Is(err, io.EOF) {
		dst.Close()
		return fmt.Errorf("gunzip: %w", err)
	}
	return dst.Close()
}

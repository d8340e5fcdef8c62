package testenv

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushRootfs imports a root filesystem tarball (as mmdebstrap writes it)
// into the registry at addr (host:port, plain HTTP) as a one-layer image
// repo:tag, speaking the registry's HTTP API, and returns the manifest's
// digest.
func PushRootfs(addr, repo, tag, tarball string, config ocispecs.ImageConfig) (string, error) {
	in, err := os.Open(tarball)
	if err != nil {
		return "", err
	}
	defer in.Close()
	var layer bytes.Buffer
	diff := sha256.New()
	zw, _ := gzip.NewWriterLevel(&layer, gzip.BestSpeed)
	if _, err := io.Copy(io.MultiWriter(zw, diff), in); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	img := ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Config:   config,
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.Digest("sha256:" + hex.EncodeToString(diff.Sum(nil)))}},
	}
	cfg, _ := json.Marshal(img)
	layerDesc, err := pushBlob(addr, repo, layer.Bytes(), ocispecs.MediaTypeImageLayerGzip)
	if err != nil {
		return "", err
	}
	cfgDesc, err := pushBlob(addr, repo, cfg, ocispecs.MediaTypeImageConfig)
	if err != nil {
		return "", err
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ocispecs.MediaTypeImageManifest,
		"config":        cfgDesc,
		"layers":        []any{layerDesc},
	})
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(man))
	req.Header.Set("Content-Type", ocispecs.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("put manifest %s:%s: %s: %s", repo, tag, resp.Status, b)
	}
	return digestOf(man), nil
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func pushBlob(addr, repo string, data []byte, mediaType string) (descriptor, error) {
	d := descriptor{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
	resp, err := http.Post("http://"+addr+"/v2/"+repo+"/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		return d, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return d, fmt.Errorf("start upload to %s: %s", repo, resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return d, err
	}
	if !loc.IsAbs() {
		loc, _ = url.Parse("http://" + addr + loc.String())
	}
	qv := loc.Query()
	qv.Set("digest", d.Digest)
	loc.RawQuery = qv.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = int64(len(data))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return d, fmt.Errorf("upload %s to %s: %s: %s", d.Digest, repo, resp.Status, strings.TrimSpace(string(b)))
	}
	return d, nil
}

// hasManifest reports whether the registry at addr has repo:tag.
func hasManifest(addr, repo, tag string) bool {
	req, _ := http.NewRequest(http.MethodHead, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", ocispecs.MediaTypeImageManifest+", application/vnd.docker.distribution.manifest.v2+json, "+ocispecs.MediaTypeImageIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

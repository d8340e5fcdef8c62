package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// TestMain keeps the host's AWS configuration out of the tests.
func TestMain(m *testing.M) {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

// settings are the defaults in the endpoint's region.
func settings() *Settings {
	s := DefaultSettings()
	s.Region = awstest.Region
	return s
}

// endpoint starts the project's AWS endpoint and a provider whose real SDK
// clients are pointed at it with BaseEndpoint and its fixed credentials.
func endpoint(t *testing.T, opts awstest.Options) (*awstest.Server, *Provider) {
	t.Helper()
	srv := awstest.New(opts)
	t.Cleanup(srv.Close)
	p := &Provider{
		Endpoint:    srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider(awstest.AccessKey, awstest.SecretKey, ""),
		Poll:        10 * time.Millisecond,
		MaxBackoff:  20 * time.Millisecond,
	}
	return srv, p
}

// disk writes a sparse raw disk of size bytes holding data at the given
// offsets, and returns its image.
func disk(t *testing.T, size int64, data map[int64][]byte) (string, *pack.Image) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	digest, _, err := pack.FileDigest(path)
	if err != nil {
		t.Fatal(err)
	}
	return dir, &pack.Image{App: "hello", Base: "linux", Format: "raw", Disk: "disk.raw", Boot: pack.BootBIOS,
		Digest: digest, Size: size, VirtualSize: size, Ports: []int{8080}}
}

// smallDisk is a 3 MiB disk with data in its first block, somewhere in the
// middle and in its (partial) last bytes.
func smallDisk(t *testing.T, seed string) (string, *pack.Image) {
	return disk(t, 3<<20+1000, map[int64][]byte{
		0:             []byte("boot sector " + seed),
		BlockSize + 7: []byte(strings.Repeat("x", 100)),
		3<<20 + 900:   []byte("tail"),
	})
}

type specOpt func(*deploy.Spec)

func withSettings(s *Settings) specOpt {
	return func(sp *deploy.Spec) { sp.Target.Settings = s }
}

func spec(t *testing.T, dir string, img *pack.Image, opts ...specOpt) (deploy.Spec, *messages) {
	t.Helper()
	id := state.NewID(img.App)
	msgs := &messages{}
	sp := deploy.Spec{
		Project: "/projects/hello", Target: &lang.Target{Name: "prod", Provider: Name, Settings: settings()},
		Image: img, ImageDir: dir, RunDir: filepath.Join(t.TempDir(), id), ID: id,
		Timeout: 10 * time.Second, Progress: msgs.add,
	}
	for _, o := range opts {
		o(&sp)
	}
	return sp, msgs
}

type messages struct {
	mu   sync.Mutex
	list []string
}

func (m *messages) add(s string) { m.mu.Lock(); m.list = append(m.list, s); m.mu.Unlock() }
func (m *messages) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.list, "\n")
}

// empty fails unless the endpoint's inventory holds nothing.
func empty(t *testing.T, srv *awstest.Server) {
	t.Helper()
	if inv := srv.Inventory(); len(inv) != 0 {
		t.Errorf("the inventory still holds %v", inv)
	}
}

// kinds counts the inventory's resources by kind.
func kinds(srv *awstest.Server) map[string]int {
	out := map[string]int{}
	for _, r := range srv.Inventory() {
		out[r.Kind]++
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

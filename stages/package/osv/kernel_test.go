package osv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/internal/testenv"
)

// The fixture's kernel prints this banner (its BUILD.md).
const fixtureVersion = "v0.57.0-398-g0e34e4dc"

func TestResolveKernelFixture(t *testing.T) {
	dir := testenv.Fixture(t, "osv")
	for _, tc := range []struct {
		name     string
		explicit string
		env      string
	}{
		{"folder in the Unikfile", dir, ""},
		{"loader file in the Unikfile", filepath.Join(dir, LoaderFile), ""},
		{"folder in the environment", "", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var environ []string
			if tc.env != "" {
				environ = []string{KernelEnv + "=" + tc.env}
			}
			k, err := ResolveKernel(tc.explicit, t.TempDir(), environ, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k.Version != fixtureVersion {
				t.Errorf("version %q, want %q", k.Version, fixtureVersion)
			}
			want := map[string]string{
				k.LoaderDigest:  "ca5f86e67aef770737a094e9bec74395f38866eb4e34a9d969a6fc234791ae2b",
				k.EnvironDigest: "68864d7e8aea8518e26e47281296f6a271464f29a24b831c62b72c3265d9ca23",
				k.BootDigest:    "438894617e127fda3ffafe43a22f1d59c6bd89ed9ab5498b512b4b677afeea85",
			}
			for got, w := range want {
				if got != w {
					t.Errorf("digest %s, want %s (BUILD.md)", got, w)
				}
			}
			if k.Boot != filepath.Join(dir, BootFile) || k.Environ != filepath.Join(dir, EnvironFile) || k.Digest == "" {
				t.Errorf("kernel %+v", k)
			}
		})
	}
}

// fakeKernel writes a kernel folder: an ELF header with OSv's banner,
// a libenviron.so and, with boot, a loader.img.
func fakeKernel(t *testing.T, dir string, boot bool) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, LoaderFile), []byte("\x7fELF....OSv v1.2.3-4-gabc\n...."), 0o644)
	os.WriteFile(filepath.Join(dir, EnvironFile), []byte("environ"), 0o644)
	if boot {
		img := make([]byte, 130*sector)
		img[510], img[511] = 0x55, 0xaa
		os.WriteFile(filepath.Join(dir, BootFile), img, 0o644)
	}
}

func TestResolveKernelOrder(t *testing.T) {
	cacheDir := t.TempDir()
	fakeKernel(t, filepath.Join(cacheDir, "kernels", "osv", "v1"), true)
	fakeKernel(t, filepath.Join(cacheDir, "kernels", "osv", "v2"), false)
	fakeKernel(t, filepath.Join(cacheDir, "kernels", "osv", ".123-fetch-x"), false) // being written
	k, err := ResolveKernel("", cacheDir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(k.Loader)) != "v2" || k.Boot != "" || k.Version != "v1.2.3-4-gabc" {
		t.Errorf("from the cache: %+v, want v2's kernel without loader.img", k)
	}
	named := filepath.Join(t.TempDir(), "named")
	fakeKernel(t, named, true)
	k, err = ResolveKernel("", cacheDir, []string{KernelEnv + "=" + named}, nil)
	if err != nil || filepath.Dir(k.Loader) != named {
		t.Errorf("the environment comes before the cache: %+v %v", k, err)
	}
	k, err = ResolveKernel(filepath.Join(cacheDir, "kernels", "osv", "v1"), cacheDir, []string{KernelEnv + "=" + named}, nil)
	if err != nil || filepath.Base(filepath.Dir(k.Loader)) != "v1" {
		t.Errorf("the Unikfile comes first: %+v %v", k, err)
	}
}

func TestResolveKernelMissing(t *testing.T) {
	_, err := ResolveKernel("", t.TempDir(), nil, nil)
	var nf *KernelNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("no kernel anywhere: %v", err)
	}
	for _, want := range []string{"no OSv kernel found", "$UNIKFILE_OSV_KERNEL (unset)", "kernels/osv/*", "./scripts/build fs=rofs", "osv { kernel", "loader-stripped.elf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	// A named kernel that is not there is an error, not a fallback.
	cacheDir := t.TempDir()
	fakeKernel(t, filepath.Join(cacheDir, "kernels", "osv", "v1"), false)
	_, err = ResolveKernel("", cacheDir, []string{KernelEnv + "=/nonexistent/osv"}, nil)
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "/nonexistent/osv (from $UNIKFILE_OSV_KERNEL)") {
		t.Errorf("a missing named kernel: %v", err)
	}
	// A kernel without libenviron.so says where it comes from.
	noEnv := t.TempDir()
	fakeKernel(t, noEnv, false)
	os.Remove(filepath.Join(noEnv, EnvironFile))
	_, err = ResolveKernel(noEnv, "", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no libenviron.so beside loader-stripped.elf") || !strings.Contains(err.Error(), "build/release/libenviron.so") {
		t.Errorf("no libenviron.so: %v", err)
	}
	// Not an ELF file.
	notELF := t.TempDir()
	fakeKernel(t, notELF, false)
	os.WriteFile(filepath.Join(notELF, LoaderFile), []byte("text"), 0o644)
	if _, err := ResolveKernel(notELF, "", nil, nil); err == nil || !strings.Contains(err.Error(), "is not an ELF file") {
		t.Errorf("a text file as kernel: %v", err)
	}
}

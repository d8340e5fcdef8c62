package linux

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/cache"
)

// fakeKernel lays out root/boot/vmlinuz-ver and, if withModules,
// root/lib/modules/ver/kernel.
func fakeKernel(t *testing.T, root, ver string, withModules bool) string {
	t.Helper()
	p := filepath.Join(root, "boot", "vmlinuz-"+ver)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("kernel "+ver), 0o644); err != nil {
		t.Fatal(err)
	}
	if withModules {
		if err := os.MkdirAll(filepath.Join(root, "lib", "modules", ver, "kernel"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestResolveKernelOrder(t *testing.T) {
	cache := t.TempDir()
	fakeKernel(t, filepath.Join(cache, "kernels", "6.1.0-9-cloud-amd64"), "6.1.0-9-cloud-amd64", true)
	newest := fakeKernel(t, filepath.Join(cache, "kernels", "6.1.0-56-cloud-amd64"), "6.1.0-56-cloud-amd64", true)
	// Newer but incomplete (no modules): skipped.
	fakeKernel(t, filepath.Join(cache, "kernels", "6.10.0-1-cloud-amd64"), "6.10.0-1-cloud-amd64", false)

	envKernel := fakeKernel(t, t.TempDir(), "6.2.0-env", true)
	explicitDir := t.TempDir()
	explicit := filepath.Join(explicitDir, "bzImage")
	if err := os.WriteFile(explicit, []byte("custom"), 0o644); err != nil {
		t.Fatal(err)
	}

	k, err := ResolveKernel(explicit, cache, []string{KernelEnv + "=" + envKernel})
	if err != nil {
		t.Fatal(err)
	}
	if k.Path != explicit || k.ModulesDir != "" || k.Version != "" {
		t.Errorf("explicit: %+v", k)
	}

	k, err = ResolveKernel("", cache, []string{"PATH=/bin", KernelEnv + "=" + envKernel})
	if err != nil {
		t.Fatal(err)
	}
	if k.Path != envKernel || k.Version != "6.2.0-env" || k.ModulesDir != filepath.Join(filepath.Dir(filepath.Dir(envKernel)), "lib", "modules", "6.2.0-env") {
		t.Errorf("env: %+v", k)
	}

	k, err = ResolveKernel("", cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Path != newest || k.Version != "6.1.0-56-cloud-amd64" {
		t.Errorf("cache: got %+v, want %s", k, newest)
	}
	if want := filepath.Join(cache, "kernels", "6.1.0-56-cloud-amd64", "lib", "modules", "6.1.0-56-cloud-amd64"); k.ModulesDir != want {
		t.Errorf("modules dir %s, want %s", k.ModulesDir, want)
	}
}

func TestResolveKernelDigest(t *testing.T) {
	p := fakeKernel(t, t.TempDir(), "1.0", false)
	k, err := ResolveKernel(p, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := cache.FileDigest(p)
	if k.Digest != want || len(want) != 64 {
		t.Errorf("digest %q, want %q", k.Digest, want)
	}
}

func TestResolveKernelNotFound(t *testing.T) {
	cache := t.TempDir()
	_, err := ResolveKernel("", cache, nil)
	var nf *KernelNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("error %T %v, want *KernelNotFoundError", err, err)
	}
	msg := err.Error()
	for _, want := range []string{
		"no Linux kernel found: looked in ",
		filepath.Join(cache, "kernels", "*", "boot", "vmlinuz-*"),
		"$UNIKFILE_KERNEL (unset)",
		"get Debian's cloud kernel with `unikfile kernel fetch` (apt-get download linux-image-cloud-amd64, extracted into the cache), set UNIKFILE_KERNEL=/path/to/vmlinuz, or set linux { kernel = \"...\" } in the Unikfile",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}

	// A named kernel that is missing is an error naming it, not a fallback.
	fakeKernel(t, filepath.Join(cache, "kernels", "1"), "1", true)
	for _, tc := range []struct {
		explicit string
		env      []string
		want     string
	}{
		{"/nonexistent/vmlinuz", nil, "/nonexistent/vmlinuz (from linux { kernel } in the Unikfile)"},
		{"", []string{KernelEnv + "=/nonexistent/env"}, "/nonexistent/env (from $UNIKFILE_KERNEL)"},
	} {
		_, err := ResolveKernel(tc.explicit, cache, tc.env)
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: error %v, want it to name %q", tc.explicit, tc.env, err, tc.want)
		}
	}
}

func TestVersionLess(t *testing.T) {
	vs := []string{"6.10.0-1-cloud-amd64", "6.1.0-56-cloud-amd64", "6.1.0-9-cloud-amd64", "5.10.0-30-cloud-amd64", "6.1.0-56-amd64", "6.1.0"}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	want := "5.10.0-30-cloud-amd64 6.1.0 6.1.0-9-cloud-amd64 6.1.0-56-amd64 6.1.0-56-cloud-amd64 6.10.0-1-cloud-amd64"
	if got := strings.Join(vs, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// A kernel's timer frequency comes from the configuration beside it
// (Debian's boot/config-<version>); without one it is unknown, never
// guessed.
func TestResolveKernelHZ(t *testing.T) {
	root := t.TempDir()
	p := fakeKernel(t, root, "6.1.0-9-cloud-amd64", false)
	k, err := ResolveKernel(p, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.HZ != 0 {
		t.Errorf("HZ = %d without a config; want 0", k.HZ)
	}
	config := "CONFIG_HZ_250=y\n# CONFIG_HZ_1000 is not set\nCONFIG_HZ=250\nCONFIG_HZ_PERIODIC=y\n"
	if err := os.WriteFile(filepath.Join(root, "boot", "config-6.1.0-9-cloud-amd64"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if k, err = ResolveKernel(p, "", nil); err != nil || k.HZ != 250 {
		t.Errorf("HZ = %d, %v; want 250 from boot/config-6.1.0-9-cloud-amd64", k.HZ, err)
	}
	for _, bad := range []string{"", "CONFIG_HZ_250=y\n", "CONFIG_HZ=fast\n", "CONFIG_HZ=-4\n"} {
		f := filepath.Join(t.TempDir(), "config")
		os.WriteFile(f, []byte(bad), 0o644)
		if hz := ConfigHZ(f); hz != 0 {
			t.Errorf("ConfigHZ(%q) = %d; want 0", bad, hz)
		}
	}
}

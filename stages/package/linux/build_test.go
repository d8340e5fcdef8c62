package linux

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/guest"
	pack "github.com/unikfile/unikfile/stages/package"
)

// testInput is an Input with a fake kernel, fake modules, a fake init and
// a small bundle.
func testInput(t *testing.T) Input {
	t.Helper()
	root := t.TempDir()
	kpath := fakeKernel(t, root, "6.1.0-test", false)
	modules := filepath.Join(root, "lib", "modules", "6.1.0-test")
	fm := fakeModules(t)
	if err := os.MkdirAll(filepath.Dir(modules), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fm, modules); err != nil {
		t.Fatal(err)
	}
	k, err := ResolveKernel(kpath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.ModulesDir != modules {
		t.Fatalf("modules dir %q, want %q", k.ModulesDir, modules)
	}
	initBin := filepath.Join(root, "init")
	if err := os.WriteFile(initBin, []byte("\x7fELF init"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(root, "bundle")
	if err := os.MkdirAll(filepath.Join(bundle, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "app"), []byte("\x7fELF app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "srv", "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(root, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Input{
		BundleRoot: bundle,
		Config:     guest.Config{App: "api", Argv: []string{"/app", "-v"}, Env: []string{"A=1"}, Ports: []int{8080}},
		Kernel:     k,
		InitBinary: initBin,
		CACerts:    ca,
	}
}

func readImageCPIO(t *testing.T, dir string) map[string]cpioEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, InitrdFile))
	if err != nil {
		t.Fatal(err)
	}
	es, err := readCPIO(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]cpioEntry{}
	for _, e := range es {
		m[e.Name] = e
	}
	return m
}

func TestBuildImage(t *testing.T) {
	in := testInput(t)
	out := t.TempDir()
	img, err := Build(context.Background(), in, out)
	if err != nil {
		t.Fatal(err)
	}
	if img.Base != "linux" || img.Format != "kernel+initrd" || img.Kernel != KernelFile || img.Initrd != InitrdFile ||
		img.KernelVersion != "6.1.0-test" || img.MemoryMiB != DefaultMemoryMiB || !reflect.DeepEqual(img.Ports, []int{8080}) || img.App != "api" {
		t.Errorf("image %+v", img)
	}
	if !strings.HasPrefix(img.Cmdline, "console=ttyS0 quiet panic=-1 rdinit=/init") {
		t.Errorf("cmdline %q", img.Cmdline)
	}
	var onDisk pack.Image
	b, err := os.ReadFile(filepath.Join(out, pack.ImageFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &onDisk); err != nil || !reflect.DeepEqual(&onDisk, img) {
		t.Errorf("image.json %s differs from %+v (%v)", b, img, err)
	}
	kb, _ := os.ReadFile(filepath.Join(out, KernelFile))
	if string(kb) != "kernel 6.1.0-test" {
		t.Errorf("kernel copy %q", kb)
	}

	files := readImageCPIO(t, out)
	for name, mode := range map[string]uint32{
		"init":                              modeFile | 0o755,
		"app":                               modeFile | 0o755,
		"srv/index.html":                    modeFile | 0o644,
		"etc/unikfile/init.json":            modeFile | 0o644,
		"etc/hosts":                         modeFile | 0o644,
		"etc/ssl/certs/ca-certificates.crt": modeFile | 0o644,
		"dev/console":                       modeChar | 0o600,
		"proc":                              modeDir | 0o555,
		"sys":                               modeDir | 0o555,
		"dev":                               modeDir | 0o755,
		"tmp":                               modeDir | 0o1777,
		"run":                               modeDir | 0o755,
		"lib/modules/6.1.0-test/kernel/drivers/net/virtio_net.ko": modeFile | 0o644,
	} {
		e, ok := files[name]
		if !ok {
			t.Errorf("initramfs lacks %s", name)
			continue
		}
		if e.Mode != mode {
			t.Errorf("%s mode %o, want %o", name, e.Mode, mode)
		}
	}
	if string(files["init"].Data) != "\x7fELF init" {
		t.Errorf("init %q", files["init"].Data)
	}

	var cfg guest.Config
	if err := json.Unmarshal(files["etc/unikfile/init.json"].Data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.App != "api" || !reflect.DeepEqual(cfg.Argv, []string{"/app", "-v"}) || !reflect.DeepEqual(cfg.Ports, []int{8080}) {
		t.Errorf("config %+v", cfg)
	}
	if !cfg.Net.DHCP || cfg.Net.DHCPTimeoutMillis != DHCPTimeoutMillis || cfg.Net.Static == nil || !reflect.DeepEqual(*cfg.Net.Static, guest.QEMUUserNet) {
		t.Errorf("net %+v", cfg.Net)
	}
	if len(cfg.Modules) == 0 || cfg.Modules[0] != "/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko" {
		t.Errorf("modules %v", cfg.Modules)
	}
	for _, m := range cfg.Modules {
		if _, ok := files[strings.TrimPrefix(m, "/")]; !ok {
			t.Errorf("config lists %s, which the initramfs lacks", m)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(out, ".*partial*")); len(entries) > 0 {
		t.Errorf("left behind %v", entries)
	}
}

func TestBuildDeterministic(t *testing.T) {
	for _, c := range []string{CompressionNone, CompressionGzip} {
		in := testInput(t)
		in.Compression = c
		a, b := t.TempDir(), t.TempDir()
		ia, err := Build(context.Background(), in, a)
		if err != nil {
			t.Fatal(err)
		}
		ib, err := Build(context.Background(), in, b)
		if err != nil {
			t.Fatal(err)
		}
		if ia.Digest != ib.Digest {
			t.Errorf("%s: digests differ: %s %s", c, ia.Digest, ib.Digest)
		}
		ra, _ := os.ReadFile(filepath.Join(a, InitrdFile))
		rb, _ := os.ReadFile(filepath.Join(b, InitrdFile))
		if !bytes.Equal(ra, rb) {
			t.Errorf("%s: initrds differ", c)
		}
		// The digest covers the command line.
		in.ExtraCmdline = "unikfile.verbose"
		ic, err := Build(context.Background(), in, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if ic.Digest == ia.Digest || !strings.HasSuffix(ic.Cmdline, " unikfile.verbose") {
			t.Errorf("%s: extra cmdline: digest %s cmdline %q", c, ic.Digest, ic.Cmdline)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(t *testing.T, in *Input)
		want string
	}{
		"no kernel":       {func(t *testing.T, in *Input) { in.Kernel = nil }, "ResolveKernel"},
		"no argv":         {func(t *testing.T, in *Input) { in.Config.Argv = nil }, "argv is empty"},
		"bad compression": {func(t *testing.T, in *Input) { in.Compression = "xz" }, `compression "xz"`},
		"no init":         {func(t *testing.T, in *Input) { in.InitBinary = "/nonexistent/init" }, "guest.Build"},
		"bundle has /init": {func(t *testing.T, in *Input) {
			if err := os.WriteFile(filepath.Join(in.BundleRoot, "init"), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "the app bundle has /init"},
		"memory too small": {func(t *testing.T, in *Input) {
			big := make([]byte, 40<<20)
			if err := os.WriteFile(filepath.Join(in.BundleRoot, "big"), big, 0o644); err != nil {
				t.Fatal(err)
			}
			in.MemoryMiB = 128
		}, "memory 128 MiB is too small for an initramfs of 40 MiB"},
		"kernel changed": {func(t *testing.T, in *Input) {
			if err := os.WriteFile(in.Kernel.Path, []byte("other"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "changed since it was resolved"},
		"no virtio_net": {func(t *testing.T, in *Input) {
			if err := os.Remove(filepath.Join(in.Kernel.ModulesDir, "kernel/drivers/net/virtio_net.ko")); err != nil {
				t.Fatal(err)
			}
		}, "virtio_net not found"},
	} {
		t.Run(name, func(t *testing.T) {
			in := testInput(t)
			tc.edit(t, &in)
			out := t.TempDir()
			_, err := Build(context.Background(), in, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "package api (linux): ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(out, pack.ImageFile)); err == nil {
				t.Error("image.json written for a failed build")
			}
		})
	}
}

func TestBuildCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	if _, err := Build(ctx, testInput(t), out); err == nil {
		t.Fatal("no error")
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 0 {
		t.Errorf("left %d files", len(entries))
	}
}

func TestBuildWithoutModules(t *testing.T) {
	in := testInput(t)
	in.Kernel.ModulesDir = "" // a kernel with its drivers built in
	out := t.TempDir()
	if _, err := Build(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	files := readImageCPIO(t, out)
	var cfg guest.Config
	if err := json.Unmarshal(files["etc/unikfile/init.json"].Data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Modules) != 0 {
		t.Errorf("modules %v", cfg.Modules)
	}
	for name := range files {
		if strings.HasPrefix(name, "lib/modules") {
			t.Errorf("module file %s", name)
		}
	}
}

func TestBuildKeepsCallerNet(t *testing.T) {
	in := testInput(t)
	in.Config.Net = guest.Net{DHCP: true, DHCPTimeoutMillis: 10000}
	out := t.TempDir()
	if _, err := Build(context.Background(), in, out); err != nil {
		t.Fatal(err)
	}
	var cfg guest.Config
	if err := json.Unmarshal(readImageCPIO(t, out)["etc/unikfile/init.json"].Data, &cfg); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Net, in.Config.Net) {
		t.Errorf("net %+v, want the caller's %+v", cfg.Net, in.Config.Net)
	}
}

func TestModulesDigestFollowsModuleContents(t *testing.T) {
	in := testInput(t)
	d1, err := ModulesDigest(in.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := ModulesDigest(in.Kernel); d2 != d1 {
		t.Fatal("the same modules gave two digests")
	}
	rels, err := imageModules(in.Kernel.ModulesDir)
	if err != nil || len(rels) == 0 {
		t.Fatalf("closure: %v %v", rels, err)
	}
	p := filepath.Join(in.Kernel.ModulesDir, rels[0])
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if d3, _ := ModulesDigest(in.Kernel); d3 == d1 {
		t.Fatal("a changed module file did not change the digest")
	}
	if d, err := ModulesDigest(&Kernel{}); err != nil || d == "" {
		t.Fatalf("a kernel without modules: %q %v", d, err)
	}
}

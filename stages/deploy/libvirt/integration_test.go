package libvirt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

// connectHelperEnv makes the test binary connect to the URI it names and
// print the error: TestPermissionDenied runs it as another user.
const connectHelperEnv = "UNIKFILE_TEST_LIBVIRT_CONNECT"

func TestMain(m *testing.M) {
	if uri := os.Getenv(connectHelperEnv); uri != "" {
		c, err := connect(context.Background(), uri)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startLibvirt(t *testing.T, opts testenv.LibvirtOptions) *testenv.Libvirt {
	t.Helper()
	if m := testenv.LibvirtMissing(); m != "" {
		t.Skip(m)
	}
	lv, err := testenv.StartLibvirtWith(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lv.Stop)
	return lv
}

// fakeImage is a kernel+initrd image of random bytes: enough to upload,
// not to boot.
func fakeImage(t *testing.T) (*pack.Image, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"kernel", "initrd"} {
		b := make([]byte, 3<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &pack.Image{App: "api", Format: pack.FormatKernelInitrd, Kernel: "kernel", Initrd: "initrd",
		Cmdline: "console=ttyS0", Digest: "0123", MemoryMiB: 128, Ports: []int{8080}}, dir
}

func fakeSpec(t *testing.T, uri, pool string, s *Settings) deploy.Spec {
	img, dir := fakeImage(t)
	if s == nil {
		s = DefaultSettings()
	}
	s.URI, s.Pool, s.Accel = uri, pool, AccelTCG
	tg := &lang.Target{Name: "lab", Provider: Name, Settings: s, Apps: []string{"api"}}
	fw, _ := s.Forwards(img.Ports)
	for i := range fw {
		port, err := tempPort("127.0.0.1", true)
		if err != nil {
			t.Fatal(err)
		}
		fw[i].Host = port
	}
	id := "api-" + fmt.Sprint(time.Now().UnixNano()%1e10)
	return deploy.Spec{Project: t.TempDir(), Target: tg, Image: img, ImageDir: dir, Forwards: fw,
		RunDir: filepath.Join(t.TempDir(), id), ID: id, Timeout: time.Minute}
}

func nothingLeft(t *testing.T, lv *testenv.Libvirt, spec deploy.Spec) {
	t.Helper()
	ctx := context.Background()
	doms, err := lv.Domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := lv.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 0 || len(vols) != 0 {
		t.Errorf("left behind: domains %v, volumes %v", doms, vols)
	}
	if _, err := os.Stat(spec.RunDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s left behind (%v)", spec.RunDir, err)
	}
}

// A boot that fails after its upload (injected), after defining the
// domain (injected), or because QEMU cannot load the kernel (real) leaves
// no domain and no volume, the uploaded ones included; and a retry goes
// as far again.
func TestIntegrationFailuresLeaveNothing(t *testing.T) {
	lv := startLibvirt(t, testenv.LibvirtOptions{})
	for _, step := range []string{"upload", "define", ""} {
		name := step
		if name == "" {
			name = "unbootable kernel"
		}
		t.Run(name, func(t *testing.T) {
			p := NewProvider(deploy.Env{StateDir: t.TempDir()})
			injected := errors.New("injected failure after " + step)
			p.failAfter = func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			var said []string
			for try := 0; try < 2; try++ {
				spec := fakeSpec(t, lv.URI, lv.Pool, nil)
				spec.Progress = func(m string) { said = append(said, m) }
				inst, err := p.Boot(context.Background(), spec)
				if err == nil || inst != nil {
					t.Fatalf("boot: %v, %v", inst, err)
				}
				if step != "" && !errors.Is(err, injected) {
					t.Fatalf("boot failed, but not where it was made to: %v", err)
				}
				if step == "" && !strings.Contains(err.Error(), "start domain") {
					t.Errorf("an unbootable kernel fails with %v", err)
				}
				nothingLeft(t, lv, spec)
			}
			if !strings.Contains(strings.Join(said, "\n"), "uploading kernel (3.0 MiB) into pool "+lv.Pool) {
				t.Errorf("no upload progress: %q", said)
			}
		})
	}
}

// The errors that say what to do.
func TestIntegrationConnectErrors(t *testing.T) {
	lv := startLibvirt(t, testenv.LibvirtOptions{})
	ctx := context.Background()
	p := NewProvider(deploy.Env{StateDir: t.TempDir()})
	boot := func(s *Settings, uri, pool string) error {
		spec := fakeSpec(t, uri, pool, s)
		inst, err := p.Boot(ctx, spec)
		if err == nil || inst != nil {
			t.Fatalf("boot: %v, %v", inst, err)
		}
		nothingLeft(t, lv, spec)
		return err
	}
	for _, c := range []struct {
		name, uri, pool string
		s               *Settings
		want            string
	}{
		{"no libvirtd", "qemu:///system?socket=" + filepath.Join(t.TempDir(), "sock"), lv.Pool, nil, "no libvirtd answers at"},
		{"no libvirtd on tcp", "qemu+tcp://127.0.0.1:1/system", lv.Pool, nil, "no libvirtd answers at qemu+tcp://127.0.0.1:1/system"},
		{"no pool", lv.URI, "nosuch", nil, `has no storage pool "nosuch"; create one (virsh pool-define-as`},
		{"no network", lv.URI, lv.Pool, &Settings{Network: "nosuch", CPUs: 1}, `has no network "nosuch"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := boot(c.s, c.uri, c.pool); !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want %q", err, c.want)
			}
		})
	}

	t.Run("permission denied", func(t *testing.T) {
		// The test binary, copied where another user can run it, connects
		// as nobody.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "unikfile-libvirt-helper-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		_ = os.Chmod(dir, 0o755)
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "helper")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), connectHelperEnv+"="+lv.URI)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied on libvirt's socket "+lv.Socket) || !strings.Contains(string(out), "usermod -aG libvirt") {
			t.Errorf("as nobody: %v\n%s", err, out)
		}
	})

	t.Run("no QEMU driver", func(t *testing.T) {
		bare := startLibvirt(t, testenv.LibvirtOptions{WithoutQEMU: true})
		_, err := connect(ctx, bare.URI)
		if err == nil || !strings.Contains(err.Error(), "has no QEMU driver") || !strings.Contains(err.Error(), "apt-get install libvirt-daemon-driver-qemu") {
			t.Errorf("connect to a libvirtd without the QEMU driver: %v", err)
		}
	})
}

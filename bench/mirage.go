package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/stages/compile"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/mirage"
	"github.com/unikfile/unikfile/stages/package/osv"
)

var mirageToolchain = flag.String("mirage-toolchain", "", "MirageOS toolchain for -suite mirage (default: $UNIKFILE_MIRAGE_TOOLCHAIN, then the one in $UNIKFILE_FIXTURES/mirage, unpacked for the run)")

// mirageUnikfile is the Unikfile of the MirageOS side: the fixture's
// TCP/HTTP example (echo on 7, HTTP on --http-port) in web/.
const mirageUnikfile = `variable "port" {
  default = 8080
}
app "web" {
  source   = "./web"
  language = "ocaml"
  base     = "mirage"
  args     = ["--http-port=8080"]
  ports    = [8080]
}
target "dev" {
  provider = "qemu"
  apps     = [app.web]
  qemu {
    accel      = "%s"
    host_ports = { 8080 = var.port }
  }
}
`

// benchMirage compares boot to first HTTP response of a MirageOS
// unikernel (the mirage fixture's TCP/HTTP example, Solo5 virtio) with the
// linux base's and, when an OSv kernel is at hand, the osv base's (Go's
// examples/hello on both), in one run with boots interleaved: through
// `unikfile up` (images cached), and with a plain QEMU command line for
// mirage (the goal) and osv.
func benchMirage() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-mirage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tc, fixture, err := findMirageToolchain(tmp)
	if err != nil {
		return err
	}
	linuxKernel, err := findKernel()
	if err != nil {
		return err
	}
	bin := filepath.Join(tmp, "unikfile")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	newEnv := func(base string) *env {
		return &env{tmp: filepath.Join(tmp, base), bin: bin, project: filepath.Join(tmp, base, "project"), cache: filepath.Join(tmp, base, "cache"),
			state: filepath.Join(tmp, base, "state"), kernel: linuxKernel, port: freePort(), base: base}
	}
	goHello := func(base, osvKernel string) (*env, error) {
		e := newEnv(base)
		e.osvKernel = osvKernel
		if err := copyDir(filepath.Join(root, "examples", "hello"), e.project); err != nil {
			return nil, err
		}
		uf, _ := os.ReadFile(filepath.Join(e.project, "Unikfile"))
		uf = bytes.Replace(uf, []byte("qemu {"), []byte("qemu {\n    accel = \""+*accel+"\""), 1)
		uf = bytes.Replace(uf, []byte(`language = "go"`), []byte("language = \"go\"\n  base     = \""+base+"\""), 1)
		if err := os.WriteFile(filepath.Join(e.project, "Unikfile"), uf, 0o644); err != nil {
			return nil, err
		}
		return e, e.unikfile("build")
	}
	var sides []*env
	names := map[*env]string{}
	lin, err := goHello("linux", "")
	if err != nil {
		return err
	}
	defer lin.unikfile("down")
	sides, names[lin] = append(sides, lin), "linux (Go hello)"
	osvNote := "osv: no OSv kernel (-osv-kernel, " + osv.KernelEnv + " or UNIKFILE_FIXTURES/osv), left out"
	if kdir := osvKernelDir(); kdir != "" {
		if k, err := osv.ResolveKernel(kdir, "", nil, nil); err == nil {
			o, err := goHello("osv", filepath.Dir(k.Loader))
			if err != nil {
				return err
			}
			defer o.unikfile("down")
			sides, names[o] = append(sides, o), "osv (Go hello)"
			osvNote = "osv: OSv " + k.Version
		}
	}
	m := newEnv("mirage")
	m.extra = []string{compile.MirageToolchainEnv + "=" + tc}
	if err := copyDir(filepath.Join(fixture, "app", "tcp-echo"), filepath.Join(m.project, "web")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(m.project, "Unikfile"), []byte(fmt.Sprintf(mirageUnikfile, *accel)), 0o644); err != nil {
		return err
	}
	if err := m.unikfile("build"); err != nil {
		return err
	}
	defer m.unikfile("down")
	sides, names[m] = append(sides, m), "mirage (TCP/HTTP example)"

	fmt.Printf("unikfile bench -suite mirage: %s, %d CPUs, accel %s, %s, %s; medians of %d boots per side, interleaved\n\n",
		runtime.Version(), runtime.NumCPU(), *accel, kernelVersion(linuxKernel), osvNote, *boots)
	images := map[*env]string{}
	for _, e := range sides {
		if images[e], err = e.imageDir(); err != nil {
			return err
		}
	}
	img, err := pack.ReadImage(images[m])
	if err != nil {
		return err
	}
	up := map[*env][]time.Duration{}
	plain := map[*env][]time.Duration{}
	for i := 0; i < *boots; i++ {
		for _, e := range sides {
			d, err := timeIt(func() error {
				if err := e.unikfile("up"); err != nil {
					return err
				}
				return waitHTTP(e.port, time.Minute)
			})
			if err != nil {
				return err
			}
			up[e] = append(up[e], d)
			if err := e.unikfile("down"); err != nil {
				return err
			}
			switch e {
			case lin:
				// The linux base's plain boot takes minutes on a loaded
				// TCG machine (its own bench measures it); up is compared.
				continue
			case m:
				d, err = plainMirage(images[m], img)
			default:
				d, err = plainQEMU(e, images[e])
			}
			if err != nil {
				return err
			}
			plain[e] = append(plain[e], d)
		}
	}
	for _, e := range sides[:len(sides)-1] {
		report("boot to first response, mirage: up", median(up[m]), names[e]+": up", median(up[e]))
		report("  same, fastest of each side", minimum(up[m]), names[e]+": up", minimum(up[e]))
		if len(plain[e]) > 0 {
			report("boot to first response, mirage: qemu", median(plain[m]), names[e]+": plain qemu", median(plain[e]))
		}
	}
	fmt.Printf("mirage: plain qemu median %s, fastest %s\n", round(median(plain[m])), round(minimum(plain[m])))
	goal := "met"
	if median(plain[m]) > time.Second {
		goal = "NOT met"
	}
	fmt.Printf("goal: MirageOS boot to first response <= 1.0 s under %s (median, plain qemu): %s (%s; through unikfile up %s)\n",
		*accel, goal, round(median(plain[m])), round(median(up[m])))
	return nil
}

// osvKernelDir is the OSv kernel folder -suite osv would use.
func osvKernelDir() string {
	if *osvKernel != "" {
		return *osvKernel
	}
	if d := os.Getenv(osv.KernelEnv); d != "" {
		return d
	}
	if f := os.Getenv("UNIKFILE_FIXTURES"); f != "" {
		return filepath.Join(f, "osv")
	}
	return ""
}

// findMirageToolchain returns the toolchain to build with and the mirage
// fixture's folder (whose example app is benchmarked): -mirage-toolchain,
// $UNIKFILE_MIRAGE_TOOLCHAIN, or the fixture's tarball unpacked into tmp.
func findMirageToolchain(tmp string) (toolchain, fixture string, err error) {
	fx := os.Getenv("UNIKFILE_FIXTURES")
	if fx == "" {
		return "", "", fmt.Errorf("-suite mirage benchmarks the mirage fixture's TCP/HTTP example: set UNIKFILE_FIXTURES (scripts/test's folder of fixtures)")
	}
	fixture = filepath.Join(fx, "mirage")
	tc := *mirageToolchain
	if tc == "" {
		tc = os.Getenv(compile.MirageToolchainEnv)
	}
	if tc != "" {
		return tc, fixture, nil
	}
	cmd := exec.Command("sh", "-c", `zstd -dc "$1" | tar -xf - -C "$2"`, "sh", filepath.Join(fixture, "mirage-toolchain.tar.zst"), tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("unpack the mirage fixture's toolchain (needs zstd; or pass -mirage-toolchain): %v\n%s", err, out)
	}
	return filepath.Join(tmp, "mirage-toolchain"), fixture, nil
}

// plainMirage boots a mirage image with the command line the fixture's
// BUILD.md gives (the image's kernel, boot parameters and machine, a port
// forward) and returns the time to the first HTTP response.
func plainMirage(imageDir string, img *pack.Image) (time.Duration, error) {
	port := freePort()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", *accel, "-cpu", mirage.CPUModel, "-m", strconv.Itoa(img.MemoryMiB),
		"-nodefaults", "-no-acpi", "-no-user-config", "-display", "none", "-serial", "file:/dev/null", "-device", "isa-debug-exit",
		"-device", "virtio-net-pci,netdev=n0,romfile=",
		"-netdev", "user,id=n0,restrict=on,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(port)+"-10.0.2.15:8080",
		"-kernel", filepath.Join(imageDir, img.Kernel), "-append", img.Cmdline)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitHTTP(port, time.Minute); err != nil {
		return 0, fmt.Errorf("plain qemu (mirage): %w", err)
	}
	return time.Since(start), nil
}

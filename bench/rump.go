package main

import (
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

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/osv"
)

var rumpToolchain = flag.String("rump-toolchain", "", "Rumprun toolchain folder for -suite rump (default: $UNIKFILE_RUMPRUN_TOOLCHAIN, then the fixture in $UNIKFILE_FIXTURES/rumprun, unpacked into the cache)")

// benchRump compares the rump base with the linux base (and the osv base
// when an OSv kernel is found) in one run, on one C source
// (examples/rump/c): boot to first HTTP response through `unikfile up`
// (images cached) and with a plain QEMU command line, the bases' boots
// interleaved.
func benchRump() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tc := *rumpToolchain
	if tc == "" {
		tc = os.Getenv(rumprun.Env)
	}
	if tc == "" && os.Getenv("UNIKFILE_FIXTURES") != "" {
		if tc, err = testenv.ExtractRumprun(filepath.Join(os.Getenv("UNIKFILE_FIXTURES"), "rumprun"), ""); err != nil {
			return err
		}
	}
	if _, err := rumprun.Resolve(tc, []string{}); err != nil {
		return fmt.Errorf("-suite rump needs a Rumprun toolchain (-rump-toolchain, %s or UNIKFILE_FIXTURES): %w", rumprun.Env, err)
	}
	linuxKernel, err := findKernel()
	if err != nil {
		return err
	}
	osvDir := os.Getenv(osv.KernelEnv)
	if osvDir == "" && os.Getenv("UNIKFILE_FIXTURES") != "" {
		osvDir = filepath.Join(os.Getenv("UNIKFILE_FIXTURES"), "osv")
	}
	if k, err := osv.ResolveKernel(osvDir, "", nil, nil); err == nil {
		osvDir = filepath.Dir(k.Loader)
	} else {
		osvDir = ""
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-rump-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "unikfile")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	mk := func(base string) (*env, error) {
		e := &env{tmp: filepath.Join(tmp, base), bin: bin, project: filepath.Join(tmp, base, "c"), cache: filepath.Join(tmp, base, "cache"),
			state: filepath.Join(tmp, base, "state"), kernel: linuxKernel, port: freePort(), osvKernel: osvDir, base: base}
		if err := copyDir(filepath.Join(root, "examples", "rump", "c"), e.project); err != nil {
			return nil, err
		}
		uf := fmt.Sprintf(`variable "port" {
  default = 8080
}
app "c" {
  language = "c"
  base     = %q
  args     = ["8080"]
  ports    = [8080]
  %s
}
target "dev" {
  provider = "qemu"
  apps     = [app.c]
  qemu {
    accel      = %q
    host_ports = { 8080 = var.port }
  }
}
`, base, map[bool]string{true: fmt.Sprintf("rump {\n    toolchain = %q\n  }", tc)}[base == "rump"], *accel)
		if err := os.WriteFile(filepath.Join(e.project, "Unikfile"), []byte(uf), 0o644); err != nil {
			return nil, err
		}
		if err := e.unikfile("build"); err != nil {
			return nil, err
		}
		return e, nil
	}
	bases := []string{"linux", "rump"}
	if osvDir != "" {
		bases = []string{"linux", "osv", "rump"}
	}
	var envs []*env
	for _, b := range bases {
		e, err := mk(b)
		if err != nil {
			return err
		}
		defer e.unikfile("down")
		envs = append(envs, e)
	}
	fmt.Printf("unikfile bench -suite rump: %s, %d CPUs, accel %s, load average %s; examples/rump/c on %v; medians of %d boots per base, interleaved\n\n",
		runtime.Version(), runtime.NumCPU(), *accel, loadavg(), bases, *boots)
	images := map[*env]string{}
	for _, e := range envs {
		if images[e], err = e.imageDir(); err != nil {
			return err
		}
	}
	times := map[string][]time.Duration{}
	plain := map[string][]time.Duration{}
	for i := 0; i < *boots; i++ {
		for _, e := range envs {
			d, err := timeIt(func() error {
				if err := e.unikfile("up"); err != nil {
					return err
				}
				return waitHTTP(e.port, time.Minute)
			})
			if err != nil {
				return err
			}
			times[e.base] = append(times[e.base], d)
			if err := e.unikfile("down"); err != nil {
				return err
			}
			d, err = plainQEMU(e, images[e])
			if err != nil {
				return err
			}
			plain[e.base] = append(plain[e.base], d)
		}
	}
	for _, other := range bases[:len(bases)-1] {
		report("boot to first response, rump: unikfile up", median(times["rump"]), "the "+other+" base", median(times[other]))
		report("boot to first response, rump: plain qemu", median(plain["rump"]), "the "+other+" base", median(plain[other]))
		report("  same, fastest of each side", minimum(plain["rump"]), "the "+other+" base", minimum(plain[other]))
	}
	goal := "met"
	if median(plain["rump"]) > time.Second {
		goal = "NOT met"
	}
	fmt.Printf("goal: Rumprun boot to first response <= 1.0 s (median, plain qemu): %s (%s; through unikfile up %s); load average at the end %s\n", goal, round(median(plain["rump"])), round(median(times["rump"])), loadavg())
	return nil
}

// plainMultiboot boots a multiboot image (rump) with a plain QEMU command
// line: its kernel and its configuration on -append, a port forward; the
// time to the first HTTP response.
func plainMultiboot(imageDir string, img *pack.Image) (time.Duration, error) {
	port := freePort()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-M", "pc", "-accel", *accel, "-cpu", "max", "-m", strconv.Itoa(max(img.MemoryMiB, 64)),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:/dev/null",
		"-kernel", filepath.Join(imageDir, img.Kernel), "-append", img.Cmdline,
		"-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:" + strconv.Itoa(port) + "-:8080",
		"-device", "virtio-net-pci,netdev=n0,romfile="}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitHTTP(port, time.Minute); err != nil {
		return 0, fmt.Errorf("plain qemu (rump): %w", err)
	}
	return time.Since(start), nil
}

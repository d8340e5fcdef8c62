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

	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/osv"
)

var osvKernel = flag.String("osv-kernel", "", "OSv kernel folder for -suite osv (default: $UNIKFILE_OSV_KERNEL, then $UNIKFILE_FIXTURES/osv)")

// benchOSv compares the osv base with the linux base in one run, on the
// same Go source (examples/hello): boot to first HTTP response through
// `unikfile up` (images cached) and with a plain QEMU command line, boots
// of the two bases interleaved; then edit-to-new-version under `unikfile
// watch` on OSv against go build plus a plain OSv boot.
func benchOSv() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	kdir := *osvKernel
	if kdir == "" {
		kdir = os.Getenv(osv.KernelEnv)
	}
	if kdir == "" && os.Getenv("UNIKFILE_FIXTURES") != "" {
		kdir = filepath.Join(os.Getenv("UNIKFILE_FIXTURES"), "osv")
	}
	k, err := osv.ResolveKernel(kdir, "", nil, nil)
	if err != nil {
		return fmt.Errorf("-suite osv needs an OSv kernel (-osv-kernel, %s or UNIKFILE_FIXTURES): %w", osv.KernelEnv, err)
	}
	linuxKernel, err := findKernel()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-osv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "unikfile")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	mk := func(base string) (*env, error) {
		e := &env{tmp: filepath.Join(tmp, base), bin: bin, project: filepath.Join(tmp, base, "hello"), cache: filepath.Join(tmp, base, "cache"),
			state: filepath.Join(tmp, base, "state"), kernel: linuxKernel, port: freePort(), osvKernel: filepath.Dir(k.Loader), base: base}
		if err := copyDir(filepath.Join(root, "examples", "hello"), e.project); err != nil {
			return nil, err
		}
		uf, _ := os.ReadFile(filepath.Join(e.project, "Unikfile"))
		uf = bytes.Replace(uf, []byte("qemu {"), []byte("qemu {\n    accel = \""+*accel+"\""), 1)
		uf = bytes.Replace(uf, []byte(`language = "go"`), []byte("language = \"go\"\n  base     = \""+base+"\""), 1)
		if err := os.WriteFile(filepath.Join(e.project, "Unikfile"), uf, 0o644); err != nil {
			return nil, err
		}
		if err := e.unikfile("build"); err != nil {
			return nil, err
		}
		return e, nil
	}
	lin, err := mk("linux")
	if err != nil {
		return err
	}
	defer lin.unikfile("down")
	o, err := mk("osv")
	if err != nil {
		return err
	}
	defer o.unikfile("down")
	fmt.Printf("unikfile bench -suite osv: %s, %d CPUs, accel %s, OSv %s against %s; medians of %d boots per side, interleaved\n\n",
		runtime.Version(), runtime.NumCPU(), *accel, k.Version, kernelVersion(linuxKernel), *boots)
	images := map[*env]string{}
	for _, e := range []*env{lin, o} {
		if images[e], err = e.imageDir(); err != nil {
			return err
		}
	}
	times := map[*env][]time.Duration{}
	plain := map[*env][]time.Duration{}
	for i := 0; i < *boots; i++ {
		for _, e := range []*env{lin, o} {
			d, err := timeIt(func() error {
				if err := e.unikfile("up"); err != nil {
					return err
				}
				return waitHTTP(e.port, time.Minute)
			})
			if err != nil {
				return err
			}
			times[e] = append(times[e], d)
			if err := e.unikfile("down"); err != nil {
				return err
			}
			d, err = plainQEMU(e, images[e])
			if err != nil {
				return err
			}
			plain[e] = append(plain[e], d)
		}
	}
	report("boot to first response, osv: unikfile up", median(times[o]), "the linux base", median(times[lin]))
	report("boot to first response, osv: plain qemu", median(plain[o]), "the linux base", median(plain[lin]))
	report("  same, fastest of each side", minimum(plain[o]), "the linux base", minimum(plain[lin]))
	goal := "met"
	if median(plain[o]) > time.Second {
		goal = "NOT met"
	}
	fmt.Printf("goal: OSv boot to first response <= 1.0 s (median, plain qemu): %s (%s; through unikfile up %s)\n\n", goal, round(median(plain[o])), round(median(times[o])))

	// Edit to new version on OSv (bench/watch.go, with OSv's floor).
	o.cache = filepath.Join(o.tmp, "cache-watch")
	return benchWatch(o)
}

// plainOSv boots an OSv image with a plain QEMU command line (the machine,
// the image's own arguments from osv.QEMUArgs, a port forward) and
// returns the time to the first HTTP response.
func plainOSv(imageDir string, img *pack.Image) (time.Duration, error) {
	qa, err := osv.QEMUArgs(imageDir, img)
	if err != nil {
		return 0, err
	}
	port := freePort()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"-M", osv.Machine, "-accel", *accel, "-cpu", "max", "-m", strconv.Itoa(img.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:/dev/null"}, qa...)
	args = append(args, "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(port)+"-:8080",
		"-device", "virtio-net-pci,netdev=n0,romfile=")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitHTTP(port, time.Minute); err != nil {
		return 0, fmt.Errorf("plain qemu (osv): %w", err)
	}
	return time.Since(start), nil
}

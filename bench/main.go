package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux"
)

var (
	runs   = flag.Int("runs", 5, "repetitions of each build measurement (the median is reported)")
	boots  = flag.Int("boots", 9, "boots on each side of the boot comparison; TCG boot times vary by ±15% from run to run, so it takes several")
	accel  = flag.String("accel", "tcg", "QEMU accelerator for both sides of the boot comparison")
	kernel = flag.String("kernel", "", "vmlinuz (default: $UNIKFILE_KERNEL or the newest in the cache)")
	suite  = flag.String("suite", "all", "which benchmarks: all, hello (build, no-change up, boot), monorepo (a generated tree against make), aws (the EBS upload against uploading every block), osv (boot and watch on the osv base against linux), mirage (boot of a MirageOS unikernel against linux and osv), rump (boot on the rump base against linux and osv), includeos (boot on the includeos base beside linux and osv), fastboot (the minimal kernel: boot, watch, size, interpreted runtimes before and after); and, not part of all: kill (kill -9 of up or build at random moments), soak (a watch fed many edits)")
	apps   = flag.Int("apps", 100, "apps in the monorepo benchmark's generated tree (two per Unikfile)")
	// profileDir passes UNIKFILE_PROFILE to the unikfile runs of the
	// monorepo suite: Go's CPU, block and mutex profiles and an execution
	// trace of each, for finding where a build waits.
	profileDir = flag.String("profile", "", "write Go's profiles of every unikfile run of the monorepo suite into this folder (UNIKFILE_PROFILE)")
)

func main() {
	flag.Parse()
	var err error
	if *suite == "all" || *suite == "hello" {
		err = benchmark()
	}
	if err == nil && (*suite == "all" || *suite == "monorepo") && !*gceOnly {
		err = runMonorepo()
	}
	if err == nil && (*suite == "all" || *suite == "aws") && !*gceOnly {
		err = benchAWS()
	}
	if err == nil && (*suite == "all" || *suite == "osv") && !*gceOnly {
		err = benchOSv()
	}
	if err == nil && (*suite == "all" || *suite == "rump") && !*gceOnly {
		err = benchRump()
	}
	if err == nil && (*suite == "all" || *suite == "mirage") && !*gceOnly {
		err = benchMirage()
	}
	if err == nil && (*suite == "all" || *suite == "includeos") && !*gceOnly {
		err = benchIncludeOS()
	}
	if err == nil && (*suite == "all" || *suite == "fastboot") && !*gceOnly {
		err = benchFastboot()
	}
	switch *suite {
	case "kill":
		err = runKill()
	case "soak":
		err = runSoak()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type env struct {
	tmp, bin, project, cache, state, kernel string
	port                                    int
	// osvKernel is the OSv kernel folder for apps on the osv base
	// (UNIKFILE_OSV_KERNEL); base is the hello app's base ("" is linux).
	osvKernel, base string
	// extra is more of the environment unikfile runs with.
	extra []string
}

func benchmark() error {
	if *languages {
		return benchLanguages()
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	e := &env{tmp: tmp, bin: filepath.Join(tmp, "unikfile"), project: filepath.Join(tmp, "hello"),
		state: filepath.Join(tmp, "state"), port: freePort()}
	if e.kernel, err = findKernel(); err != nil {
		return err
	}
	if err := buildUnikfile(root, e.bin); err != nil {
		return err
	}
	if err := copyDir(filepath.Join(root, "examples", "hello"), e.project); err != nil {
		return err
	}
	// The example's Unikfile with the accelerator fixed, so both sides of
	// the boot comparison run the same way.
	uf, _ := os.ReadFile(filepath.Join(e.project, "Unikfile"))
	uf = bytes.Replace(uf, []byte("qemu {"), []byte("qemu {\n    accel = \""+*accel+"\""), 1)
	os.WriteFile(filepath.Join(e.project, "Unikfile"), uf, 0o644)

	fmt.Printf("unikfile bench: %s, %d CPUs, %s, accel %s; medians of %d builds and %d boots per side\n\n", runtime.Version(), runtime.NumCPU(), kernelVersion(e.kernel), *accel, *runs, *boots)
	defer e.unikfile("down")
	if *buildkitOnly {
		return buildkitBench(e, root)
	}
	if *watchOnly {
		return benchWatch(e)
	}
	if *gceOnly {
		e.cache = filepath.Join(tmp, "cache-gce")
		return benchGCE(e)
	}

	// 1. Cold build against the bare steps.
	var cold, bare []time.Duration
	for i := 0; i < *runs; i++ {
		e.cache = filepath.Join(tmp, "cache-"+strconv.Itoa(i))
		d, err := timeIt(func() error { return e.unikfile("build") })
		if err != nil {
			return err
		}
		cold = append(cold, d)
		d, err = timeIt(func() error { return bareBuild(e, i) })
		if err != nil {
			return err
		}
		bare = append(bare, d)
	}
	report("cold build of examples/hello", median(cold), "go build app+init, write initramfs", median(bare))

	// 2. No-change up.
	if err := e.unikfile("up"); err != nil {
		return err
	}
	var noop []time.Duration
	for i := 0; i < *runs*2; i++ {
		d, err := timeIt(func() error { return e.unikfile("up") })
		if err != nil {
			return err
		}
		noop = append(noop, d)
	}
	fmt.Printf("%-40s %10s   (goal: well under 1s)\n\n", "no-change up", round(median(noop)))
	if err := e.unikfile("down"); err != nil {
		return err
	}

	// 3. Boot to first response: unikfile up (image cached) against plain QEMU.
	imageDir, err := e.imageDir()
	if err != nil {
		return err
	}
	var upBoot, plainBoot []time.Duration
	for i := 0; i < *boots; i++ {
		d, err := timeIt(func() error {
			if err := e.unikfile("up"); err != nil {
				return err
			}
			return waitHTTP(e.port, time.Minute)
		})
		if err != nil {
			return err
		}
		upBoot = append(upBoot, d)
		if err := e.unikfile("down"); err != nil {
			return err
		}
		d, err = plainQEMU(e, imageDir)
		if err != nil {
			return err
		}
		plainBoot = append(plainBoot, d)
	}
	report("boot to first response: unikfile up", median(upBoot), "plain qemu command line", median(plainBoot))
	report("  same, fastest of each side", minimum(upBoot), "plain qemu command line", minimum(plainBoot))

	// 4. The gce tarball of a 1 GiB disk, now and before (bench/gce.go).
	if err := benchGCE(e); err != nil {
		return err
	}
	// 5. Edit to new version under watch, against go build + boot.
	if err := benchWatch(e); err != nil {
		return err
	}
	// 6. The BuildKit executor against the local one (bench/buildkit.go).
	return buildkitBench(e, root)
}

func report(name string, got time.Duration, baseName string, base time.Duration) {
	fmt.Printf("%-40s %10s\n%-40s %10s\n%-40s %9.2fx  (overhead %+.1f%%)\n\n", name, round(got), "  baseline: "+baseName, round(base),
		"  ratio", float64(got)/float64(base), 100*(float64(got)/float64(base)-1))
}

func (e *env) unikfile(args ...string) error {
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = e.project
	cmd.Env = append(e.environ(), "UNIKFILE_VAR_port="+strconv.Itoa(e.port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("unikfile %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// environ is the environment unikfile runs with.
func (e *env) environ() []string {
	env := append(os.Environ(), "UNIKFILE_CACHE_DIR="+e.cache, "UNIKFILE_STATE_DIR="+e.state, "UNIKFILE_KERNEL="+e.kernel)
	if e.osvKernel != "" {
		env = append(env, "UNIKFILE_OSV_KERNEL="+e.osvKernel)
	}
	return append(env, e.extra...)
}

// imageDir asks unikfile where the hello image is.
func (e *env) imageDir() (string, error) { return e.imageDirArgs() }

// imageDirArgs asks unikfile where the hello image of a build with args
// is.
func (e *env) imageDirArgs(args ...string) (string, error) {
	cmd := exec.Command(e.bin, append([]string{"build", "--json"}, args...)...)
	cmd.Dir = e.project
	cmd.Env = e.environ()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build --json: %v", err)
	}
	i := bytes.Index(out, []byte(`"dir": "`))
	if i < 0 {
		return "", fmt.Errorf("build --json: no dir in %s", out)
	}
	rest := out[i+8:]
	return string(rest[:bytes.IndexByte(rest, '"')]), nil
}

// bareBuild does what a cold build must do at least: compile the app and the
// init (in parallel), and write the initramfs, with no planning, hashing or
// caching.
func bareBuild(e *env, i int) error {
	dir := filepath.Join(e.tmp, "bare-"+strconv.Itoa(i))
	os.MkdirAll(filepath.Join(dir, "rootfs", "app"), 0o755)
	gobuild := func(dirArg, out string, pkg string) error {
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
		cmd.Dir = dirArg
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, b)
		}
		return nil
	}
	// The app and the init compile at once, as unikfile's graph does.
	initBin := filepath.Join(dir, "init")
	initErr := make(chan error, 1)
	go func() { initErr <- guest.Build(context.Background(), "go", initBin) }()
	appErr := gobuild(e.project, filepath.Join(dir, "rootfs", "app", "main"), ".")
	if err := errors.Join(appErr, <-initErr); err != nil {
		return err
	}
	return bareInitramfs(e, dir, initBin)
}

// plainQEMU boots the image's kernel and initrd (or, for an OSv image, its
// kernel and root disk) with a plain command line and returns the time to
// the first HTTP response.
func plainQEMU(e *env, imageDir string) (time.Duration, error) {
	if img, err := pack.ReadImage(imageDir); err == nil && img.RootDisk != "" {
		return plainOSv(imageDir, img)
	} else if err == nil && img.KernelEntry == pack.KernelEntryMultiboot {
		return plainMultiboot(imageDir, img)
	}
	cmdline, err := os.ReadFile(filepath.Join(imageDir, "cmdline"))
	if err != nil {
		cmdline, err = imageCmdline(imageDir)
		if err != nil {
			return 0, err
		}
	}
	port := freePort()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The machine the image's kernel boots on fastest, as unikfile picks
	// it: a microvm for a minimal kernel (PVH entry, virtio-mmio).
	machine, nic := "pc", "virtio-net-pci,netdev=n0,romfile="
	append := strings.TrimSpace(string(cmdline))
	if img, err := pack.ReadImage(imageDir); err == nil && img.KernelEntry == pack.KernelEntryPVH && img.Bus == pack.BusVirtioMMIO {
		machine, nic = "microvm,x-option-roms=off,isa-serial=on", "virtio-net-device,netdev=n0"
		if *accel == "tcg" {
			append += qemu.TCGMicroVMCmdline(qemu.HostTSCkHz(), img.KernelHZ)
		}
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-M", machine, "-accel", *accel, "-cpu", "max", "-m", "256",
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:/dev/null",
		"-kernel", filepath.Join(imageDir, "kernel"), "-initrd", filepath.Join(imageDir, "initrd"),
		"-append", append,
		"-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(port)+"-:8080",
		"-device", nic)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitHTTP(port, time.Minute); err != nil {
		return 0, fmt.Errorf("plain qemu: %w", err)
	}
	return time.Since(start), nil
}

// waitHTTP asks for / every 50 ms: QEMU's user network accepts the host
// side of a connection before the guest listens, so a request sent too
// early may hang; a new one starts beside it soon, and the first answer
// counts.
func waitHTTP(port int, limit time.Duration) error {
	return pollHTTP(port, limit, 50*time.Millisecond)
}

// pollHTTP starts a request for / every interval, without waiting for the
// ones still running (each may take up to 10 s: on a heavily loaded
// machine a TCG guest's answer takes longer than any short timeout, and
// cancelling slow requests would never see one), until one is answered
// 200 or limit passes.
func pollHTTP(port int, limit, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	answered := make(chan struct{}, 1)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		go func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		}()
		select {
		case <-answered:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("no HTTP answer on port %d within %s", port, limit)
		case <-tick.C:
		}
	}
}

func timeIt(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func minimum(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func round(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot() (string, error) {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "Unikfile.example")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run bench from inside the unikfile repository")
		}
		dir = parent
	}
}

// userCacheDir is unikfile's cache of the user running the benchmarks.
func userCacheDir() string {
	if base := os.Getenv("UNIKFILE_CACHE_DIR"); base != "" {
		return base
	}
	c, _ := os.UserCacheDir()
	return filepath.Join(c, "unikfile")
}

func findKernel() (string, error) {
	if *kernel != "" {
		return *kernel, nil
	}
	k, err := linux.ResolveKernel("", userCacheDir(), os.Environ())
	if err != nil {
		return "", err
	}
	return k.Path, nil
}

func kernelVersion(path string) string {
	return "kernel " + strings.TrimPrefix(filepath.Base(path), "vmlinuz-")
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(t, b, fi.Mode())
	})
}

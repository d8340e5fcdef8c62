package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	sdk "github.com/unikfile/unikfile/stages/compile/includeos"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/osv"
)

var includeosSDK = flag.String("includeos-sdk", "", "IncludeOS SDK folder for -suite includeos (default: $UNIKFILE_INCLUDEOS_SDK, then the fixture's, unpacked from $UNIKFILE_FIXTURES/includeos)")

// benchIncludeOS measures boot to first HTTP response of the includeos
// base beside the other bases in one run, boots interleaved: the C++
// service of examples/includeos booted directly (QEMU's -kernel with the
// multiboot kernel) and from its GRUB BIOS disk, against the Go service of
// examples/hello on the linux base and, when an OSv kernel is at hand, on
// the osv base. Each side is timed through `unikfile up` and with a plain
// QEMU command line.
func benchIncludeOS() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	sdkDir := *includeosSDK
	if sdkDir == "" {
		sdkDir = os.Getenv(sdk.SDKEnv)
	}
	if sdkDir == "" {
		dir, err := testenv.UnpackFixture("includeos", "includeos-x86_64-sdk.tar.zst")
		if err != nil {
			return fmt.Errorf("-suite includeos needs an IncludeOS SDK (-includeos-sdk, %s or UNIKFILE_FIXTURES): %w", sdk.SDKEnv, err)
		}
		sdkDir = filepath.Join(dir, "includeos-x86_64")
	}
	linuxKernel, err := findKernel()
	if err != nil {
		return err
	}
	osvDir := os.Getenv(osv.KernelEnv)
	if osvDir == "" && os.Getenv("UNIKFILE_FIXTURES") != "" {
		osvDir = filepath.Join(os.Getenv("UNIKFILE_FIXTURES"), "osv")
	}
	var osvKernel *osv.Kernel
	if osvDir != "" {
		osvKernel, _ = osv.ResolveKernel(osvDir, "", nil, nil)
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-includeos-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "unikfile")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	// mk copies an example with the accelerator fixed and, for the
	// includeos example, the SDK named in the app's block.
	mk := func(name, example, base string, edit func([]byte) []byte) (*env, error) {
		e := &env{tmp: filepath.Join(tmp, name), bin: bin, project: filepath.Join(tmp, name, "project"), cache: filepath.Join(tmp, name, "cache"),
			state: filepath.Join(tmp, name, "state"), kernel: linuxKernel, port: freePort(), base: base}
		if base == osv.Name {
			e.osvKernel = filepath.Dir(osvKernel.Loader)
		}
		if err := copyDir(filepath.Join(root, "examples", example), e.project); err != nil {
			return nil, err
		}
		uf, _ := os.ReadFile(filepath.Join(e.project, "Unikfile"))
		uf = bytes.ReplaceAll(uf, []byte("qemu {"), []byte("qemu {\n    accel = \""+*accel+"\""))
		if edit != nil {
			uf = edit(uf)
		}
		if err := os.WriteFile(filepath.Join(e.project, "Unikfile"), uf, 0o644); err != nil {
			return nil, err
		}
		return e, nil
	}
	lin, err := mk("linux", "hello", "", nil)
	if err != nil {
		return err
	}
	sides := []*env{lin}
	var o *env
	if osvKernel != nil {
		if o, err = mk("osv", "hello", osv.Name, func(uf []byte) []byte {
			return bytes.Replace(uf, []byte(`language = "go"`), []byte("language = \"go\"\n  base     = \"osv\""), 1)
		}); err != nil {
			return err
		}
		sides = append(sides, o)
	}
	ios, err := mk("includeos", "includeos", "includeos", func(uf []byte) []byte {
		return bytes.Replace(uf, []byte(`base     = "includeos"
  ports    = [80]`), []byte(fmt.Sprintf("base     = \"includeos\"\n  ports    = [80]\n  includeos {\n    sdk = %q\n  }", sdkDir)), 1)
	})
	if err != nil {
		return err
	}
	images := map[*env]string{}
	for _, e := range sides {
		if err := e.unikfile("build"); err != nil {
			return err
		}
		if images[e], err = e.imageDir(); err != nil {
			return err
		}
		defer e.unikfile("down")
	}
	defer ios.unikfile("down")
	direct, err := ios.builtImage("httpd", "kernel+initrd")
	if err != nil {
		return err
	}
	rawDisk, err := ios.builtImage("httpd", "raw")
	if err != nil {
		return err
	}
	// The GRUB disk under up: the example's disk target (qcow2).
	if err := ios.unikfile("build", "--format", "qcow2", "httpd"); err != nil {
		return err
	}
	startLoad := loadavg()
	osvNote := "no OSv kernel (UNIKFILE_OSV_KERNEL or UNIKFILE_FIXTURES): the osv base is left out"
	if osvKernel != nil {
		osvNote = "OSv " + osvKernel.Version
	}
	fmt.Printf("unikfile bench -suite includeos: %s, %d CPUs, accel %s, %s, load average %s; the linux base on %s, %s; medians of %d boots per side, interleaved\n\n",
		runtime.Version(), runtime.NumCPU(), *accel, machine(), startLoad, kernelVersion(linuxKernel), osvNote, *boots)
	up := map[string][]time.Duration{}
	plain := map[string][]time.Duration{}
	upAndAnswer := func(e *env, port int, args ...string) (time.Duration, error) {
		d, err := timeIt(func() error {
			if err := e.unikfile(append([]string{"up"}, args...)...); err != nil {
				return err
			}
			return waitHTTP(port, time.Minute)
		})
		if err != nil {
			return 0, err
		}
		return d, e.unikfile("down")
	}
	for i := 0; i < *boots; i++ {
		for _, e := range sides {
			d, err := upAndAnswer(e, e.port)
			if err != nil {
				return err
			}
			up[e.tmp] = append(up[e.tmp], d)
			if d, err = plainQEMU(e, images[e]); err != nil {
				return err
			}
			plain[e.tmp] = append(plain[e.tmp], d)
		}
		d, err := upAndAnswer(ios, ios.port, "dev")
		if err != nil {
			return err
		}
		up["direct"] = append(up["direct"], d)
		// The disk target answers on the example's port + 1.
		d, err = upAndAnswer(ios, ios.port+1, "disk")
		if err != nil {
			return err
		}
		up["disk"] = append(up["disk"], d)
		if d, err = plainIncludeOS(direct, "-kernel", filepath.Join(direct.dir, direct.img.Kernel), "-append", direct.img.Cmdline); err != nil {
			return err
		}
		plain["direct"] = append(plain["direct"], d)
		if d, err = plainIncludeOS(rawDisk, "-drive", "file="+filepath.Join(rawDisk.dir, rawDisk.img.Disk)+",format=raw,if=virtio,snapshot=on"); err != nil {
			return err
		}
		plain["disk"] = append(plain["disk"], d)
	}
	report("boot to first response, includeos direct: plain qemu", median(plain["direct"]), "the linux base", median(plain[lin.tmp]))
	if o != nil {
		report("  same", median(plain["direct"]), "the osv base", median(plain[o.tmp]))
	}
	report("boot to first response, includeos GRUB disk: plain qemu", median(plain["disk"]), "includeos direct", median(plain["direct"]))
	report("boot to first response, includeos direct: unikfile up", median(up["direct"]), "the linux base", median(up[lin.tmp]))
	if o != nil {
		report("  same", median(up["direct"]), "the osv base", median(up[o.tmp]))
	}
	report("boot to first response, includeos qcow2 disk: unikfile up", median(up["disk"]), "includeos direct", median(up["direct"]))
	report("  fastest includeos direct, plain qemu", minimum(plain["direct"]), "fastest of the linux base", minimum(plain[lin.tmp]))
	goal := func(name string, d, limit time.Duration) {
		met := "met"
		if d > limit {
			met = "NOT met"
		}
		fmt.Printf("goal: %s <= %s (median, plain qemu): %s (%s)\n", name, round(limit), met, round(d))
	}
	goal("IncludeOS direct boot (-kernel, no GRUB) to first response", median(plain["direct"]), time.Second)
	goal("IncludeOS GRUB disk boot to first response", median(plain["disk"]), 1500*time.Millisecond)
	fmt.Printf("load average: %s at the start, %s at the end\n", startLoad, loadavg())
	return nil
}

// builtImage is an image of one app as `unikfile build --json` reports it.
type builtImage struct {
	dir string
	img *pack.Image
}

func (e *env) builtImage(app, format string) (*builtImage, error) {
	cmd := exec.Command(e.bin, "build", "--json", "--format", format, app)
	cmd.Dir = e.project
	cmd.Env = e.environ()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("build --json --format %s %s: %v", format, app, err)
	}
	var built []struct {
		App string `json:"app"`
		Dir string `json:"dir"`
	}
	if err := json.Unmarshal(out, &built); err != nil || len(built) != 1 {
		return nil, fmt.Errorf("build --json: %v\n%s", err, out)
	}
	img, err := pack.ReadImage(built[0].Dir)
	if err != nil {
		return nil, err
	}
	return &builtImage{dir: built[0].Dir, img: img}, nil
}

// plainIncludeOS boots an includeos image with a plain QEMU command line
// (bootArgs: -kernel or the disk) and returns the time to its first HTTP
// response on guest port 80.
func plainIncludeOS(b *builtImage, bootArgs ...string) (time.Duration, error) {
	port := freePort()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"-M", "pc", "-accel", *accel, "-cpu", "max", "-m", strconv.Itoa(b.img.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "file:/dev/null"}, bootArgs...)
	args = append(args, "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(port)+"-:80",
		"-device", "virtio-net-pci,netdev=n0,romfile=")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitHTTP(port, time.Minute); err != nil {
		return 0, fmt.Errorf("plain qemu (includeos): %w", err)
	}
	return time.Since(start), nil
}

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The minimal kernels these tests boot are built once per machine into
// kbuildDir (scripts/install-deps --test builds them ahead: `unikfile
// kernel build`); on a machine without them the first test builds them,
// which takes minutes, hence the long limits.
const kernelBuildLimit = 45 * time.Minute

// runLong runs unikfile with a limit long enough for kernel builds.
func (p *project) runLong(args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kernelBuildLimit)
	defer cancel()
	cmd := p.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("unikfile %s: %v", strings.Join(args, " "), err)
	}
	if r.code != 0 {
		p.t.Fatalf("unikfile %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// minimalImage is one entry of `build --json` with its image.json.
type minimalImage struct {
	App    string `json:"app"`
	Digest string `json:"digest"`
	Format string `json:"format"`
	Dir    string `json:"dir"`
	image  struct {
		Kernel      string `json:"kernel"`
		KernelEntry string `json:"kernel_entry"`
		KernelHZ    int    `json:"kernel_hz"`
		Bus         string `json:"bus"`
		RootDisk    string `json:"root_disk"`
		Source      string `json:"source"`
	}
}

func parseBuilt(t *testing.T, stdout string) map[string]*minimalImage {
	t.Helper()
	var imgs []*minimalImage
	if err := json.Unmarshal([]byte(stdout), &imgs); err != nil {
		t.Fatalf("build --json: %v\n%s", err, stdout)
	}
	out := map[string]*minimalImage{}
	for _, img := range imgs {
		b, err := os.ReadFile(filepath.Join(img.Dir, "image.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &img.image); err != nil {
			t.Fatal(err)
		}
		out[img.App] = img
	}
	return out
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cpusSource is a Go HTTP server on port 8080 answering msg and the
// number of CPUs the guest has.
func cpusSource(msg string) string {
	return `package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s on %d CPUs\n", ` + strconv.Quote(msg) + `, runtime.NumCPU())
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
`
}

// qemuConfigs is what `ps --json` shows of each instance's QEMU, by app.
func (p *project) qemuConfigs() map[string]struct{ Machine, Cmdline string } {
	p.t.Helper()
	var insts []struct {
		App    string `json:"app"`
		Config struct {
			Machine string `json:"machine"`
			Cmdline string `json:"cmdline"`
		} `json:"config"`
	}
	r := p.ok("ps", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &insts); err != nil {
		p.t.Fatalf("ps --json: %v\n%s", err, r.stdout)
	}
	out := map[string]struct{ Machine, Cmdline string }{}
	for _, i := range insts {
		out[i.App] = struct{ Machine, Cmdline string }{i.Config.Machine, i.Config.Cmdline}
	}
	return out
}

// Two Go apps with the same needs share one minimal kernel and boot on
// QEMU's microvm; a target that boots a BIOS disk needs PCI devices and a
// bzImage, and gets a second kernel, which boots too. A guest gets two
// CPUs when its target does not set cpus (on a host with two or more),
// and what cpus says when it does.
func TestMinimalKernelIsSharedAndPerPlatform(t *testing.T) {
	needBoot(t)
	pa, pb, pd := freePort(t), freePort(t), freePort(t)
	p := newProject(t, map[string]string{
		"a/go.mod":  goMod,
		"a/main.go": cpusSource("hello from a"),
		"b/go.mod":  goMod,
		"b/main.go": cpusSource("hello from b"),
		"Unikfile": fmt.Sprintf(`app "a" {
  source   = "a"
  language = "go"
  ports    = [8080]
  linux {
    kernel = "minimal"
  }
}
app "b" {
  source   = "b"
  language = "go"
  ports    = [8080]
  linux {
    kernel = "minimal"
  }
}
target "dev" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d }
  }
}
target "b" {
  provider = "qemu"
  apps     = [app.b]
  qemu {
    accel      = "tcg"
    cpus       = 1
    host_ports = { 8080 = %d }
  }
}
target "disk" {
  provider = "qemu"
  apps     = [app.a]
  format   = "qcow2"
  boot     = "bios"
  qemu {
    accel      = "tcg"
    host_ports = { 8080 = %d }
  }
}
`, pa, pb, pd),
	})
	// One kernel node for both apps.
	g := p.ok("graph", "a", "b", "--json")
	if n := strings.Count(g.stdout, `"id": "build kernel (pvh root-disk virtio-mmio)"`); n != 1 {
		t.Fatalf("graph of a and b: %d kernel nodes named build kernel (pvh root-disk virtio-mmio), want 1:\n%s", n, g.stdout)
	}
	built := parseBuilt(t, p.runLong("build", "a", "b", "--json").stdout)
	a, b := built["a"], built["b"]
	if a == nil || b == nil {
		t.Fatalf("build --json gave %v", built)
	}
	ka, kb := fileSHA(t, filepath.Join(a.Dir, a.image.Kernel)), fileSHA(t, filepath.Join(b.Dir, b.image.Kernel))
	if ka != kb {
		t.Errorf("a and b have the same needs but two kernels (%s, %s)", ka[:12], kb[:12])
	}
	if a.image.KernelEntry != "pvh" || a.image.Bus != "virtio-mmio" {
		t.Errorf("a's image: kernel entry %q, bus %q; want pvh and virtio-mmio", a.image.KernelEntry, a.image.Bus)
	}
	if a.image.KernelHZ <= 0 {
		t.Errorf("a's image does not know its kernel's HZ (kernel_hz %d): its config is beside the kernel", a.image.KernelHZ)
	}
	if head := readHead(t, filepath.Join(a.Dir, a.image.Kernel), 4); head != "\x7fELF" {
		t.Errorf("a's kernel starts with %q, want an ELF vmlinux", head)
	}

	p.runLong("up", "dev", "b")
	defaultCPUs := 1
	if runtime.NumCPU() >= 2 {
		defaultCPUs = 2
	}
	if got, want := get(t, pa), fmt.Sprintf("hello from a on %d CPUs", defaultCPUs); !strings.Contains(got, want) {
		t.Errorf("GET a (cpus unset, a %d-CPU host) = %q, want %q", runtime.NumCPU(), got, want)
	}
	if got := get(t, pb); !strings.Contains(got, "hello from b on 1 CPUs") {
		t.Errorf("GET b (cpus = 1) = %q, want hello from b on 1 CPUs", got)
	}
	for app, c := range p.qemuConfigs() {
		if c.Machine != "microvm" {
			t.Errorf("%s boots on %q, want microvm", app, c.Machine)
		}
		// Every CPU is told its delay loop where the TSC frequency is.
		if strings.Contains(c.Cmdline, "tsc_early_khz=") && !strings.Contains(c.Cmdline, " lpj=") {
			t.Errorf("%s's command line gives the TSC frequency but no lpj: %s", app, c.Cmdline)
		}
	}
	p.ok("down")

	// The disk target: another kernel, built for PCs, in a BIOS disk.
	up := p.runLong("up", "disk")
	if !strings.Contains(up.stderr, "build kernel (pci virtio-pci)") {
		t.Errorf("up disk did not go through the PC kernel's node:\n%s", up.stderr)
	}
	if got, want := get(t, pd), fmt.Sprintf("hello from a on %d CPUs", defaultCPUs); !strings.Contains(got, want) {
		t.Errorf("GET disk = %q, want %q", got, want)
	}
	var kernels []struct {
		Kind     string
		Path     string
		Features []string
	}
	if err := json.Unmarshal([]byte(p.ok("kernel", "ls", "--json").stdout), &kernels); err != nil {
		t.Fatal(err)
	}
	// The kernel cache is the machine's, so it may also hold kernels that
	// earlier versions built for other needs: look for a's kernel among
	// the microVM ones, and check every PC kernel.
	var micro, pcs []string
	for _, k := range kernels {
		f := strings.Join(k.Features, ",")
		switch {
		case k.Kind != "minimal":
		case strings.Contains(f, "pvh"):
			micro = append(micro, k.Path)
		case strings.Contains(f, "virtio-pci") && !strings.Contains(f, "efi-stub"):
			pcs = append(pcs, k.Path)
		}
	}
	if len(micro) == 0 || len(pcs) == 0 {
		t.Fatalf("kernel ls: want a microVM kernel and a PC kernel for Go, got %+v", kernels)
	}
	found := false
	for _, path := range micro {
		found = found || fileSHA(t, path) == ka
	}
	if !found {
		t.Errorf("kernel ls lists no microVM kernel that is the one a boots (%s): %v", ka[:12], micro)
	}
	// A bzImage: the Linux boot protocol's header magic at 0x202.
	for _, pc := range pcs {
		if b, err := os.ReadFile(pc); err != nil || len(b) < 0x206 || string(b[0x202:0x206]) != "HdrS" {
			t.Errorf("the PC kernel %s is not a bzImage (%v)", pc, err)
		}
	}
	p.ok("down")
}

// An interpreted app boots with its minimal kernel: the bundle is on a
// read-only root disk, the initramfs holds the init alone.
func TestMinimalKernelPythonOnARootDisk(t *testing.T) {
	needBoot(t)
	files := exampleFiles(t, "python")
	files["Unikfile"] = strings.Replace(files["Unikfile"], `  ports    = [8080]
}`, `  ports    = [8080]
  linux {
    kernel = "minimal"
  }
}`, 1)
	if !strings.Contains(files["Unikfile"], `kernel = "minimal"`) {
		t.Fatal("could not add the linux block to examples/python/Unikfile")
	}
	p := newProject(t, files)
	port := freePort(t)
	built := parseBuilt(t, p.runLong("build", "--json").stdout)
	img := built["hello-python"]
	if img == nil {
		t.Fatalf("build --json: %v", built)
	}
	if img.image.RootDisk == "" {
		t.Fatal("the Python image has no root disk")
	}
	if fi, err := os.Stat(filepath.Join(img.Dir, "initrd")); err != nil || fi.Size() > 4<<20 {
		t.Errorf("initramfs beside a root disk: %v bytes (%v), want only the init", fi.Size(), err)
	}
	p.runLong("up", "--var", "port="+strconv.Itoa(port), "--timeout", "10m")
	if got := slowGet(t, port); !strings.Contains(got, "hello from Python") {
		t.Fatalf("GET = %q", got)
	}
	if m := p.qemuConfigs()["hello-python"].Machine; m != "microvm" {
		t.Errorf("boots on %q, want microvm", m)
	}
	logs := p.ok("logs", "hello-python").stdout
	if !strings.Contains(logs, "unikfile-init: ready") {
		t.Errorf("console:\n%s", logs)
	}
	// The provider told the init its address on QEMU's user network
	// (guest.IPParam): no DHCP exchange, and the app still answered.
	if !strings.Contains(logs, "unikfile-init: address 10.0.2.15/24 via the host") {
		t.Errorf("the init did not take its address from the host:\n%s", logs)
	}
	// A stop reaches the app through the power button (ACPI on microvm).
	if !strings.Contains(logs, "stop on power button") {
		t.Errorf("the init does not watch the power button on microvm:\n%s", logs)
	}
	p.ok("down")
}

// Java with its minimal kernel starts from the class-data-sharing archive
// the build dumped: -Xshare:on (here through JAVA_TOOL_OPTIONS, which the
// JVM reads besides its command line) makes a JVM that cannot map the
// archive exit instead of starting without it.
func TestMinimalKernelJavaMapsItsCDSArchive(t *testing.T) {
	needBoot(t)
	files := exampleFiles(t, "java")
	files["Unikfile"] = strings.Replace(files["Unikfile"], `  ports    = [8080]
}`, `  ports    = [8080]
  env      = { JAVA_TOOL_OPTIONS = "-Xshare:on -Xlog:cds" }
  linux {
    kernel = "minimal"
  }
}`, 1)
	if !strings.Contains(files["Unikfile"], `kernel = "minimal"`) {
		t.Fatal("could not add the linux block to examples/java/Unikfile")
	}
	p := newProject(t, files)
	port := freePort(t)
	p.runLong("up", "--var", "port="+strconv.Itoa(port), "--timeout", "10m")
	if got := slowGet(t, port); !strings.Contains(got, "hello from Java") {
		t.Fatalf("GET = %q", got)
	}
	logs := p.ok("logs", "hello-java").stdout
	for _, want := range []string{"Picked up JAVA_TOOL_OPTIONS: -Xshare:on", "Mapped static", "/opt/java/lib/server/classes.jsa"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the console has no %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "alternative address") {
		t.Errorf("the JVM relocated the archive:\n%s", logs)
	}
	// Under TCG the init gave the JVM the options it starts faster with
	// when emulated (stages/compile's JavaEmulatedOptions); the launcher says so.
	if want := "Picked up JDK_JAVA_OPTIONS: -XX:CompileThresholdScaling=100"; !strings.Contains(logs, want) {
		t.Errorf("the console has no %q:\n%s", want, logs)
	}
	p.ok("down")
}

func readHead(t *testing.T, p string, n int) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

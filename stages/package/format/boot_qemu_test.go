package format

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/internal/run"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
	"github.com/unikfile/unikfile/stages/package/linux"
)

// TestDiskFormatsBootQEMU makes the hello app's kernel+initrd image into a
// raw disk per boot mode and every format from it, twice, and checks for
// each: the same digest both times, qemu-img check and info agreeing with
// what Convert reported, and a QEMU booting the file as a disk (SeaBIOS or
// OVMF, no -kernel) whose app answers over HTTP. It needs qemu-system-x86,
// qemu-utils, the disk tools (see disk.Tools), ovmf, Go and a kernel.
//
// Seen on a 2-core machine under TCG: BIOS disks answer about 4-6 s after
// QEMU starts, UEFI disks 11-15 s (OVMF's start dominates).
func TestDiskFormatsBootQEMU(t *testing.T) {
	qemu, src, srcDir := kernelInitrdImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, boot := range []string{pack.BootBIOS, pack.BootUEFI} {
		t.Run(boot, func(t *testing.T) {
			if boot == pack.BootUEFI {
				if _, err := os.Stat(ovmfCode); err != nil {
					t.Skip("OVMF is not installed (apt-get install ovmf)")
				}
			}
			rawDir := t.TempDir()
			raw, err := disk.Build(ctx, disk.Input{ImageDir: srcDir, Image: src, Boot: boot}, rawDir)
			if err != nil {
				t.Fatal(err)
			}
			again, err := disk.Build(ctx, disk.Input{ImageDir: srcDir, Image: src, Boot: boot}, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if again.Digest != raw.Digest {
				t.Errorf("two raw %s disks of one image: digests %s and %s", boot, raw.Digest, again.Digest)
			}
			if raw.Size%(1<<20) != 0 || raw.Source != src.Digest || raw.Boot != boot {
				t.Errorf("raw image: size %d (want whole MiB), source %s (want %s), boot %q", raw.Size, raw.Source, src.Digest, raw.Boot)
			}
			for _, f := range Formats {
				t.Run(f.Name, func(t *testing.T) {
					img, dir := raw, rawDir
					if f.Name != Raw {
						dir = t.TempDir()
						img, err = Convert(ctx, raw, rawDir, f.Name, dir)
						if err != nil {
							t.Fatal(err)
						}
						again, err := Convert(ctx, raw, rawDir, f.Name, t.TempDir())
						if err != nil {
							t.Fatal(err)
						}
						if again.Digest != img.Digest {
							t.Errorf("two %s conversions of one raw disk: digests %s and %s", f.Name, img.Digest, again.Digest)
						}
					}
					onDisk, err := pack.ReadImage(dir)
					if err != nil {
						t.Fatal(err)
					}
					if onDisk.Digest != img.Digest || onDisk.Format != f.Name || onDisk.Boot != boot {
						t.Errorf("image.json says %+v", onDisk)
					}
					file, qfmt := filepath.Join(dir, img.Disk), f.QEMU
					if f.Name == GCE {
						file, qfmt = unpackGCE(t, file), "raw"
					}
					checkQEMUImg(t, file, qfmt, img.VirtualSize)
					if qfmt == "raw" {
						verifyPartitions(t, file)
					}
					bootDisk(t, qemu, boot, file, qfmt, img.MemoryMiB)
				})
			}
		})
	}
}

const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// checkQEMUImg compares qemu-img's view of file with what unikfile said.
func checkQEMUImg(t *testing.T, file, format string, virtualSize int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := run.Run(ctx, run.Cmd{Path: "qemu-img", Args: []string{"check", "-f", format, file}}); err != nil {
		var re *run.Error
		// raw and vpc cannot be checked (exit 63): nothing to check.
		if !errors.As(err, &re) || re.ExitCode != 63 || (format != "raw" && format != "vpc") {
			t.Errorf("qemu-img check: %v", err)
		}
	}
	res, err := run.Run(ctx, run.Cmd{Path: "qemu-img", Args: []string{"info", "-f", format, "--output=json", file}})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(res.Stdout, &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != format || info.VirtualSize != virtualSize {
		t.Errorf("qemu-img info: format %q, virtual size %d; unikfile wrote %q, %d", info.Format, info.VirtualSize, format, virtualSize)
	}
}

// verifyPartitions runs sfdisk --verify on a raw disk: for GPT, this
// checks both headers, their CRCs and the backup's place at the end.
func verifyPartitions(t *testing.T, file string) {
	t.Helper()
	res, err := run.Run(context.Background(), run.Cmd{Path: "sfdisk", Args: []string{"--verify", file}})
	if err != nil {
		t.Fatalf("sfdisk --verify: %v", err)
	}
	if out := string(res.Stdout) + string(res.Stderr); !strings.Contains(out, "No errors detected") {
		t.Errorf("sfdisk --verify %s:\n%s", file, out)
	}
}

// unpackGCE extracts disk.raw from a GCE image archive, checking that it is
// the archive's only file, in GNU tar format, and a whole number of GiB.
func unpackGCE(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "disk.raw" || h.Format != tar.FormatGNU || h.Size%(1<<30) != 0 {
		t.Errorf("archive entry %q, format %v, size %d: want disk.raw, GNU, a multiple of 1 GiB", h.Name, h.Format, h.Size)
	}
	out := filepath.Join(t.TempDir(), "disk.raw")
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(o, tr); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("the archive holds more than disk.raw (%v)", err)
	}
	return out
}

// bootDisk boots file as QEMU's only disk, with no -kernel, and waits for
// the hello app to answer over HTTP.
func bootDisk(t *testing.T, qemu, boot, file, format string, memMiB int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tmp := t.TempDir()
	port := freePort(t)
	logPath := filepath.Join(tmp, "console.log")
	machine := "pc"
	args := []string{}
	if boot == pack.BootUEFI {
		machine = "q35"
		vars := filepath.Join(tmp, "OVMF_VARS.fd")
		b, err := os.ReadFile(ovmfVars)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vars, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+ovmfCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
	}
	args = append(args,
		"-M", machine, "-accel", "tcg", "-m", fmt.Sprint(memMiB),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "file:"+logPath,
		"-drive", "file="+file+",format="+format+",if=virtio,snapshot=on",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:8080", port),
		"-device", "virtio-net-pci,netdev=n0,romfile=",
	)
	cmd := run.Command(ctx, qemu, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel()
		<-exited
	}()
	client := &http.Client{Timeout: 250 * time.Millisecond}
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			con, _ := os.ReadFile(logPath)
			t.Fatalf("qemu exited (%v) before the app answered\n%s\nstderr: %s\nconsole:\n%s", err, run.CommandLine(qemu, args), stderr.String(), con)
		default:
		}
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "hello from a disk" {
				t.Logf("%s %s disk answered %v after QEMU started", boot, format, time.Since(start).Round(time.Millisecond))
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	con, _ := os.ReadFile(logPath)
	t.Fatalf("no HTTP answer within 4 minutes\n%s\nconsole:\n%s", run.CommandLine(qemu, args), con)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const helloSrc = `package main

import (
	"fmt"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from a disk") })
	if err := http.ListenAndServe(":8080", nil); err != nil {
		panic(err)
	}
}
`

// kernelInitrdImage builds the hello app's kernel+initrd image, or skips
// when QEMU, Go or a kernel is missing.
func kernelInitrdImage(t *testing.T) (string, *pack.Image, string) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	k, err := linux.ResolveKernel("", testCacheDir(), os.Environ())
	var nf *linux.KernelNotFoundError
	if errors.As(err, &nf) {
		t.Skipf("no kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := t.TempDir()
	for name, content := range map[string]string{"go.mod": "module app\n\ngo 1.22\n", "main.go": helloSrc} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bundle := filepath.Join(src, "bundle")
	if _, err := run.Run(ctx, run.Cmd{Path: goBin, Dir: src,
		Args: []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", filepath.Join(bundle, "app"), "."},
		Env:  run.Environ("CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOTOOLCHAIN=local")}); err != nil {
		t.Fatal(err)
	}
	initBin := filepath.Join(t.TempDir(), "init")
	if err := guest.Build(ctx, goBin, initBin); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img, err := linux.Build(ctx, linux.Input{
		BundleRoot: bundle,
		Config:     guest.Config{App: "hello", Argv: []string{"/app"}, Ports: []int{8080}},
		Kernel:     k,
		InitBinary: initBin,
	}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return qemu, img, dir
}

func testCacheDir() string {
	if d := os.Getenv("UNIKFILE_CACHE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "unikfile")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "unikfile")
}

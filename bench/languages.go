package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

var (
	languages    = flag.Bool("languages", false, "measure each language's example instead: image size beside the app's own files, cold build, boot to first response")
	langBoots    = flag.Int("language-boots", 3, "boots per language (-languages)")
	langExamples = []string{"c", "cpp", "rust", "elf", "python", "node", "java"}
)

// benchLanguages builds and boots examples/<language> for each language
// and reports sizes and times side by side. The baseline of a size is the
// app's own files in the bundle (/app: the program, or the sources of an
// interpreted app), which is what the same app occupies on a host that
// already has the runtime.
func benchLanguages() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-lang-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "unikfile")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	k, err := findKernel()
	if err != nil {
		return err
	}
	fmt.Printf("unikfile bench -languages: %s, %d CPUs, %s, accel %s; median of %d boots each\n\n", runtime.Version(), runtime.NumCPU(), kernelVersion(k), *accel, *langBoots)
	fmt.Printf("%-7s %10s %10s %10s %6s %12s %12s\n", "lang", "app", "bundle", "initrd", "x app", "cold build", "boot->HTTP")
	for _, l := range langExamples {
		e := &env{tmp: tmp, bin: bin, project: filepath.Join(tmp, l), cache: filepath.Join(tmp, "cache-"+l),
			state: filepath.Join(tmp, "state-"+l), kernel: k, port: freePort()}
		if err := copyDir(filepath.Join(root, "examples", l), e.project); err != nil {
			return err
		}
		if l == "elf" {
			if out, err := exec.Command("gcc", "-O2", "-o", filepath.Join(e.project, "server"), filepath.Join(root, "examples", "c", "server.c")).CombinedOutput(); err != nil {
				return fmt.Errorf("gcc: %v\n%s", err, out)
			}
		}
		build, err := timeIt(func() error { return e.unikfile("build") })
		if err != nil {
			return err
		}
		imageDir, err := e.imageDir()
		if err != nil {
			return err
		}
		bundle, err := bundleDir(e.cache)
		if err != nil {
			return err
		}
		appSize := dirSize(filepath.Join(bundle, "rootfs", "app"))
		bundleSize := dirSize(filepath.Join(bundle, "rootfs"))
		fi, err := os.Stat(filepath.Join(imageDir, "initrd"))
		if err != nil {
			return err
		}
		var bootTimes []time.Duration
		for i := 0; i < *langBoots; i++ {
			d, err := timeIt(func() error {
				if err := e.unikfile("up", "--timeout", "10m"); err != nil {
					return err
				}
				return waitAnswer(e.port, 5*time.Minute)
			})
			e.unikfile("down")
			if err != nil {
				return err
			}
			bootTimes = append(bootTimes, d)
		}
		fmt.Printf("%-7s %10s %10s %10s %5.0fx %12s %12s\n", l, mib(appSize), mib(bundleSize), mib(fi.Size()),
			float64(fi.Size())/float64(max(appSize, 1)), round(build), round(median(bootTimes)))
	}
	return nil
}

// bundleDir is the one bundle in a cache.
func bundleDir(cache string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(cache, "objects", "bundles", "*", "rootfs"))
	if len(m) != 1 {
		return "", fmt.Errorf("want one bundle in %s, found %d", cache, len(m))
	}
	return filepath.Dir(m[0]), nil
}

func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// waitAnswer polls like waitHTTP, less often: an interpreter's or a
// JVM's first answer under TCG can take a while.
func waitAnswer(port int, limit time.Duration) error {
	return pollHTTP(port, limit, 500*time.Millisecond)
}

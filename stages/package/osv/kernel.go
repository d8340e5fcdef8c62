package osv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/cache"
)

// KernelEnv names the environment variable that points at an OSv kernel.
const KernelEnv = "UNIKFILE_OSV_KERNEL"

// The files of an OSv kernel, as OSv's build writes them into
// build/release/: the kernel for direct boot (an ELF with a PVH entry),
// the BIOS-bootable kernel (boot sector, command line area, compressed
// kernel), and the library every image holds as /libenviron.so.
const (
	LoaderFile  = "loader-stripped.elf"
	BootFile    = "loader.img"
	EnvironFile = "libenviron.so"
)

// loaderNames are the names a kernel folder's direct-boot kernel may have,
// in the order they are looked for.
var loaderNames = []string{LoaderFile, "loader.elf"}

// Kernel is an OSv kernel: the files of one OSv build.
type Kernel struct {
	// Loader is the direct-boot kernel (loader-stripped.elf).
	Loader string
	// Environ is libenviron.so, which every image holds.
	Environ string
	// Boot is loader.img, the BIOS-bootable kernel; "" when the kernel
	// has none (then only direct-boot images can be made).
	Boot string
	// Version is what the kernel prints when it starts, without "OSv "
	// (v0.57.0-398-g0e34e4dc); "" when the file does not say.
	Version string
	// Digests (sha256, hex) of Loader, Environ and Boot ("" without one),
	// and Digest over all three: the kernel's identity in cache keys.
	LoaderDigest, EnvironDigest, BootDigest string
	Digest                                  string
}

// KernelNotFoundError says no OSv kernel was found and how to get one.
type KernelNotFoundError struct {
	Looked []string // the places searched, in order
}

func (e *KernelNotFoundError) Error() string {
	return "no OSv kernel found: looked in " + strings.Join(e.Looked, ", ") +
		"; build one from OSv's sources (https://github.com/cloudius-systems/osv: ./scripts/build fs=rofs image=native-example, then take " +
		LoaderFile + ", " + BootFile + " and " + EnvironFile + " from build/release/), then set " + KernelEnv +
		"=/path/to/that/folder or osv { kernel = \"...\" } in the Unikfile (`unikfile kernel fetch --base osv` fills the cache from a release pinned by digest, where one is pinned)"
}

// Digester returns the sha256 (hex) of a file's content: cache.FileDigest,
// or a cache.StatCache's FileDigest.
type Digester func(path string) (string, error)

// ResolveKernel finds the kernel: explicit (the Unikfile's osv { kernel })
// first, then $UNIKFILE_OSV_KERNEL from environ, then the kernel in the
// last (by name) folder of cacheDir/kernels/osv/*/ (the layout FetchKernel
// writes). explicit and the variable name a kernel folder or the
// direct-boot kernel file in one. A kernel the user named that does not
// exist is an error, not a reason to look elsewhere. digest nil means
// cache.FileDigest.
func ResolveKernel(explicit, cacheDir string, environ []string, digest Digester) (*Kernel, error) {
	if digest == nil {
		digest = cache.FileDigest
	}
	if explicit != "" {
		return namedKernel(explicit, "osv { kernel } in the Unikfile", digest)
	}
	if p := lookupEnv(environ, KernelEnv); p != "" {
		return namedKernel(p, "$"+KernelEnv, digest)
	}
	looked := []string{"$" + KernelEnv + " (unset)"}
	if cacheDir == "" {
		return nil, &KernelNotFoundError{Looked: looked}
	}
	pattern := filepath.Join(cacheDir, "kernels", "osv", "*")
	looked = append(looked, pattern)
	dirs, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("look for OSv kernels: %w", err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if strings.HasPrefix(filepath.Base(d), ".") {
			continue // an entry being written
		}
		if k, err := kernelIn(d, digest); err == nil {
			return k, nil
		}
	}
	return nil, &KernelNotFoundError{Looked: looked}
}

// namedKernel is a kernel the user pointed at: a folder, or the
// direct-boot kernel with its companions beside it.
func namedKernel(p, from string, digest Digester) (*Kernel, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, &KernelNotFoundError{Looked: []string{abs + " (from " + from + ")"}}
	}
	var k *Kernel
	if fi.IsDir() {
		k, err = kernelIn(abs, digest)
	} else {
		k, err = kernelFiles(abs, filepath.Dir(abs), digest)
	}
	if err != nil {
		return nil, fmt.Errorf("OSv kernel %s (from %s): %w", abs, from, err)
	}
	return k, nil
}

// kernelIn reads the kernel of folder dir.
func kernelIn(dir string, digest Digester) (*Kernel, error) {
	for _, n := range loaderNames {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return kernelFiles(p, dir, digest)
		}
	}
	return nil, fmt.Errorf("%s holds no OSv kernel (%s)", dir, strings.Join(loaderNames, " or "))
}

// kernelFiles describes the kernel whose direct-boot file is loader, with
// libenviron.so and, if present, loader.img in dir.
func kernelFiles(loader, dir string, digest Digester) (*Kernel, error) {
	k := &Kernel{Loader: loader, Environ: filepath.Join(dir, EnvironFile)}
	if fi, err := os.Stat(k.Environ); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("no %s beside %s: every OSv image holds it as /%s, and OSv's build writes it next to the kernel (build/release/%s); copy it there",
			EnvironFile, filepath.Base(loader), EnvironFile, EnvironFile)
	}
	if fi, err := os.Stat(filepath.Join(dir, BootFile)); err == nil && fi.Mode().IsRegular() {
		k.Boot = filepath.Join(dir, BootFile)
	}
	version, err := kernelVersion(loader)
	if err != nil {
		return nil, err
	}
	k.Version = version
	for _, f := range []struct {
		path string
		out  *string
	}{{k.Loader, &k.LoaderDigest}, {k.Environ, &k.EnvironDigest}, {k.Boot, &k.BootDigest}} {
		if f.path == "" {
			continue
		}
		d, err := digest(f.path)
		if err != nil {
			return nil, err
		}
		*f.out = d
	}
	h := sha256.New()
	fmt.Fprintf(h, "loader %s\nenviron %s\nboot %s\n", k.LoaderDigest, k.EnvironDigest, k.BootDigest)
	k.Digest = hex.EncodeToString(h.Sum(nil))
	return k, nil
}

// banner is what OSv prints first ("OSv v0.57.0-398-g0e34e4dc\n"), a
// string in the kernel's data.
var banner = regexp.MustCompile(`OSv (v[0-9][0-9A-Za-z.+_-]*)\n`)

// kernelVersion reads the version from the kernel's banner; a file that
// is not an ELF file is an error.
func kernelVersion(loader string) (string, error) {
	b, err := os.ReadFile(loader)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return "", fmt.Errorf("%s is not an ELF file: the direct-boot kernel is OSv's %s", loader, LoaderFile)
	}
	if m := banner.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

// CachedKernels lists the OSv kernels in cacheDir/kernels/osv, in the
// order ResolveKernel prefers them (folder names, last first).
func CachedKernels(cacheDir string) ([]*Kernel, error) {
	dirs, err := filepath.Glob(filepath.Join(cacheDir, "kernels", "osv", "*"))
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	var out []*Kernel
	for _, d := range dirs {
		if strings.HasPrefix(filepath.Base(d), ".") {
			continue
		}
		if k, err := kernelIn(d, cache.FileDigest); err == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

func lookupEnv(environ []string, key string) string {
	v := ""
	for _, e := range environ {
		if rest, ok := strings.CutPrefix(e, key+"="); ok {
			v = rest // the last one wins, as in os/exec
		}
	}
	return v
}

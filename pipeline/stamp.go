package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/compile/buildkit"
	pack "github.com/unikfile/unikfile/stages/package"
)

// The no-op fast path of `build`: after a successful build, a stamp
// records the metadata of everything the build relied on (the Unikfiles,
// the folders searched and digested, every file digested, the toolchain's
// binary and settings file, the kernel tree, the images produced) and what
// it printed. The next identical build (same invocation, relevant
// environment and unikfile binary) whose inputs all have the same
// metadata, outside the racy window, can print the same without loading a
// Unikfile or running a toolchain. Any doubt means a normal build.

// Invocation is a build command as a stamp is keyed by it: every part of
// it that could change what the build does.
type Invocation struct {
	Tool    string   // unikfile's version (the binary's digest for development builds)
	Command string   // "unikfile build"
	Args    []string // the addresses
	Dir     string   // the working directory
	// Flags are every flag's value, set or not, as "name=value", so that
	// a new flag can never replay an output made without it.
	Flags   []string
	Environ []string
}

// StampPath is where the stamp of inv lives in the cache at cacheDir.
func StampPath(cacheDir string, inv Invocation) string {
	h := sha256.New()
	fmt.Fprintf(h, "tool %s\ncmd %s\nargs %q\nwd %q\n", inv.Tool, inv.Command, inv.Args, inv.Dir)
	for _, f := range inv.Flags {
		fmt.Fprintf(h, "flag %q\n", f)
	}
	fmt.Fprintf(h, "env %q\n", stampEnviron(inv.Environ))
	return filepath.Join(cacheDir, "stamps", hex.EncodeToString(h.Sum(nil)))
}

// stampEnviron is what of the environment a build reads: Go's and cgo's
// settings, unikfile's own, and what tools are found with.
func stampEnviron(environ []string) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "CGO_"), strings.HasPrefix(name, "UNIKFILE_"),
			name == "PATH", name == "HOME", strings.HasPrefix(name, "XDG_"):
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	return env
}

// Stampable says whether a stamp would cover everything a build of apps
// into format relies on: Go apps (whose toolchain and settings a stamp
// records, ToolchainFiles), compiled locally (a builder image's tag can
// move on a registry), on the linux base, into kernel+initrd images (the
// disk tools are not recorded). executor is --executor's value. Other
// builds record no stamp; they still skip unchanged work through the
// cache.
func Stampable(apps []lang.ProjectApp, format, executor string, environ []string) bool {
	if format != pack.FormatKernelInitrd || (executor != "" && executor != compile.LocalName) || run.Getenv(environ, buildkit.HostEnv) != "" {
		return false
	}
	for _, pa := range apps {
		if pa.App.Language != "go" || pa.App.Base != "linux" {
			return false
		}
		if e := pa.Project.Build.Executor; e != "" && e != compile.LocalName {
			return false
		}
	}
	return true
}

// ToolchainFiles are the files a stampable build's toolchain answers from:
// the go binary (and what its link points at) and Go's settings file.
func ToolchainFiles(environ []string) []string {
	var out []string
	if p, err := lookPath("go", environ); err == nil {
		out = append(out, p)
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			out = append(out, real)
		}
	}
	if p := run.Getenv(environ, "GOENV"); p != "" && p != "off" {
		out = append(out, p)
	} else if dir, err := os.UserConfigDir(); err == nil {
		out = append(out, filepath.Join(dir, "go", "env"))
	}
	return out
}

// RecordStamp writes the stamp at path after a successful build: the
// metadata of everything sc saw, plus the images produced (imageDirs),
// with payload (what to replay).
func RecordStamp(sc *cache.StatCache, path string, imageDirs []string, payload []byte) error {
	for _, dir := range imageDirs {
		sc.Saw(dir)
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				sc.Saw(filepath.Join(dir, e.Name()))
			}
		}
	}
	snap, ok := sc.Snapshot()
	if !ok {
		return nil
	}
	return cache.WriteStamp(path, snap, payload)
}

// lookPath finds file in environ's PATH, as exec.LookPath does in the
// process's own.
func lookPath(file string, environ []string) (string, error) {
	for _, dir := range filepath.SplitList(run.Getenv(environ, "PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

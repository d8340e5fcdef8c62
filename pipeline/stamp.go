package pipeline

import (
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/internal/stamp"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
	"github.com/unikfile/unikfile/stages/compile/buildkit"
	pack "github.com/unikfile/unikfile/stages/package"
)

// What a build stamp covers (internal/stamp owns the key, format and
// check, and answers a no-op before the binary initialises): after a
// successful build, the metadata of everything the build relied on (the
// Unikfiles, the folders searched and digested, every file digested, the
// toolchain's binary and settings file, the kernel tree, the images
// produced, unikfile's executable) and what a replay prints. The next
// identical invocation whose inputs all have the same metadata, outside
// the racy window, prints the same without loading a Unikfile or running
// a toolchain. Any doubt means a normal build.

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

// ToolchainFiles are the files a stampable build's toolchain answers from
// (compile.GoToolchainFiles).
func ToolchainFiles(environ []string) []string { return compile.GoToolchainFiles(environ) }

// RecordStamp writes the stamp of inv at path after a successful build:
// the metadata of everything sc saw, plus the images produced (imageDirs)
// and unikfile's executable, with what a replay prints (replay, given how
// many paths a replay checks).
func RecordStamp(sc *cache.StatCache, path string, inv stamp.Invocation, imageDirs []string, replay func(paths int) stamp.Replay) error {
	for _, dir := range imageDirs {
		sc.Saw(dir)
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				sc.Saw(filepath.Join(dir, e.Name()))
			}
		}
	}
	sc.Saw(inv.Exe)
	snap, ok := sc.Snapshot()
	if !ok {
		return nil
	}
	return cache.WriteStamp(path, inv.Key(), snap, replay(snap.Len()))
}

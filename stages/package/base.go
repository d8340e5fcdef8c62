package pack

import (
	"context"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/memo"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
)

// Base joins compiled bundles with a kernel of one kind (linux, osv, ...)
// into bootable images. Each base is a package of its own and one line of
// the table in stages/registry. Its methods must be safe for concurrent
// use: the graph packages several apps at once.
type Base interface {
	// BaseSchema is the base as the Unikfile sees it: its languages and
	// the app's settings block named after it.
	lang.BaseSchema
	// Shared is work done once per run for every app of the base, as a
	// node of its own that the package nodes wait for (the linux base's
	// guest init); nil when there is none.
	Shared() *Shared
	// Package makes (or finds in env's cache) the direct-boot image
	// (FormatKernelInitrd) of one compiled app. Disk images are made
	// from it (see DiskMaker).
	Package(ctx context.Context, env *Env, in Input) (*Built, error)
}

// DiskMaker is a base that makes its raw disks itself; other bases' raw
// disks are made by stages/package/disk from their kernel+initrd image.
type DiskMaker interface {
	// Disk makes (or finds in env's cache) the raw disk that boots by
	// boot from the direct-boot image src.
	Disk(ctx context.Context, env *Env, src *Built, boot string) (*Built, error)
}

// Shared is a base's once-per-run work.
type Shared struct {
	// ID names the graph node ("build guest init").
	ID string
	// Run does the work; its output is Input.Shared of every package
	// node. cached says the output came from the cache.
	Run func(ctx context.Context, env *Env) (out any, cached bool, err error)
}

// Input is one app to package.
type Input struct {
	App    *lang.App
	Bundle *compile.Result
	// Shared is the output of the base's Shared work (nil without one).
	Shared any
	// Platform is where the image boots; Prepared is the output of the
	// work a Preparer asked for on it (nil without any).
	Platform Platform
	Prepared any
}

// Built is an image in the cache.
type Built struct {
	Image *Image
	// Dir is the image directory; Image's files are relative to it.
	Dir    string
	Cached bool
}

// Env is what a base gets from the run: the cache, the stat cache its
// inputs are digested through, and a memo for what every app of the run
// would otherwise compute again (a resolved kernel).
type Env struct {
	Cache       *cache.Store
	ToolVersion string
	// Digests digests files through the stat cache; nil digests them in
	// full.
	Digests *cache.StatCache
	// Environ is the environment the base reads its settings from
	// (UNIKFILE_KERNEL, say); nil means os.Environ().
	Environ []string
	Memo    *Memo
	// Progress receives one-line messages of long work (a kernel build)
	// for the user; nil discards them.
	Progress func(msg string)
}

// Say sends a progress message, if anyone listens.
func (e *Env) Say(msg string) {
	if e.Progress != nil {
		e.Progress(msg)
	}
}

// Memo computes each value once per key for every caller of one run (see
// package memo: a failure is retried by the next caller). The zero value
// is ready to use.
type Memo = memo.Group[any]

// Argv is the command line that starts app: the bundle's command, then
// the app's args.
func Argv(in Input) []string {
	return append(in.Bundle.Manifest.Command(), in.App.Args...)
}

// Environment is the bundle's runtime environment overridden by the app's
// env, as sorted KEY=value.
func Environment(in Input) []string {
	m := map[string]string{}
	for _, e := range in.Bundle.Manifest.Env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	for k, v := range in.App.Env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// MemoryMiB is the app's memory, raised to what the bundle needs (a
// runtime, a large image) when the Unikfile does not set it.
func MemoryMiB(in Input) int {
	if !in.App.MemorySet && in.Bundle.Manifest.MemoryMiB > in.App.MemoryMiB {
		return in.Bundle.Manifest.MemoryMiB
	}
	return in.App.MemoryMiB
}

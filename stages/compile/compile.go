package compile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/ignore"
	"github.com/unikfile/unikfile/lang"
)

// Files in a bundle directory.
const (
	RootfsDir    = "rootfs"      // the tree placed at / in the image
	ManifestFile = "bundle.json" // Manifest
)

// Manifest describes a bundle.
type Manifest struct {
	App       string `json:"app"`
	Language  string `json:"language"`
	Toolchain string `json:"toolchain"`
	// Program is the absolute path of the app's executable inside RootfsDir.
	Program string `json:"program"`
	// Key is the cache key the bundle is stored under.
	Key string `json:"key"`
	// Argv is the command that starts the app, before its args: for an
	// interpreted language the interpreter, then the script. Empty means
	// [Program].
	Argv []string `json:"argv,omitempty"`
	// Env is the environment the runtime needs (KEY=value, sorted); the
	// app's env overrides it.
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; "" means /.
	Dir string `json:"dir,omitempty"`
	// MemoryMiB is the guest memory the bundle needs when the Unikfile
	// does not say: the unpacked image plus the runtime's own needs.
	MemoryMiB int `json:"memory_mib,omitempty"`
	// EmulatedEnv is the environment the runtime adds when the guest's
	// CPU is emulated (Launch.EmulatedEnv).
	EmulatedEnv []string `json:"emulated_env,omitempty"`
}

// Command is the bundle's command line before the app's args.
func (m *Manifest) Command() []string {
	if len(m.Argv) > 0 {
		return append([]string(nil), m.Argv...)
	}
	return []string{m.Program}
}

// Language compiles apps of one language with the host's toolchain.
type Language interface {
	// Toolchain identifies the toolchain and every setting of it that can
	// change the output for app (version, flags from the environment or
	// the toolchain's own settings file), for cache keys. A missing
	// toolchain is a *run.NotFoundError.
	Toolchain(ctx context.Context, app *lang.App) (string, error)
	// ExtraInputs are folders outside app.Source that the build reads
	// (for Go: local replace directives), digested into the key.
	ExtraInputs(app *lang.App) ([]string, error)
	// Program is the absolute path the program gets inside the bundle. It
	// may depend only on what the cache key covers (source, main), so that
	// apps built from the same source share one bundle.
	Program(app *lang.App) string
	// Build compiles app into rootfs at Program(app), with what the
	// program needs at run time, and says how to start it. Compiler output
	// goes to log.
	Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error)
}

// Launch is how a bundle's program is started; the zero value runs
// Program(app) with no extra environment from /.
type Launch struct {
	Argv      []string // the command before the app's args; empty means [Program(app)]
	Env       []string // KEY=value the runtime needs
	Dir       string   // working directory
	MemoryMiB int      // guest memory the runtime needs besides the image itself (a JVM's heap)
	// EmulatedEnv is KEY=value the runtime starts faster with when the
	// guest's CPU is emulated (guest.Config.EmulatedEnv).
	EmulatedEnv []string
}

var languages = map[string]Language{
	"go":     goLang{},
	"elf":    elfLang{},
	"c":      cLang{cxx: false},
	"cpp":    cLang{cxx: true},
	"rust":   rustLang{},
	"python": pythonLang{},
	"node":   nodeLang{},
	"java":   javaLang{},
	"ocaml":  ocamlLang{},
}

// Lookup returns the language named name.
func Lookup(name string) (Language, error) {
	if l, ok := languages[name]; ok {
		return l, nil
	}
	return nil, &UnsupportedError{Language: name, Supported: Languages()}
}

// UnsupportedError is returned for a language the Unikfile accepts but this
// version of unikfile cannot build yet.
type UnsupportedError struct {
	Language  string
	Supported []string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("language %q cannot be built by this version of unikfile (supported: %s)", e.Language, strings.Join(e.Supported, ", "))
}

// Result is a compiled bundle.
type Result struct {
	Dir      string // the bundle directory in the cache
	Manifest Manifest
	Cached   bool
}

// Options carry what the compile needs besides the app.
type Options struct {
	Cache       *cache.Store
	ToolVersion string    // unikfile's own version, part of every key
	Log         io.Writer // compiler output; nil discards
	// Digests, if set, digests source files from their metadata when
	// they did not change (cache.StatCache).
	Digests *cache.StatCache
	// Memo, if set, asks each toolchain for its identity once per run.
	Memo *Memo
	// Progress receives one-line notes of an executor that compiles
	// elsewhere (BuildKit's display, a step found in its cache); nil
	// discards them.
	Progress func(line string)
}

// Compile builds app, or returns the cached bundle when nothing it depends
// on changed.
func Compile(ctx context.Context, app *lang.App, opts Options) (*Result, error) {
	l, err := Lookup(app.Language)
	if err != nil {
		return nil, err
	}
	target, err := TargetFor(app.Base)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := CheckBase(app.Base, app.Language); err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	toolName := app.Language
	if target.Compiler != nil {
		l, toolName = target.Compiler, target.Name+" "+app.Language
	}
	tc, err := opts.Memo.toolchain(ctx, toolName, l, app, opts.Cache)
	if err != nil {
		return nil, err
	}
	extra, err := l.ExtraInputs(app)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", app.Name, err)
	}
	src, err := SourceDigest(app, extra, opts.Digests)
	if err != nil {
		return nil, err
	}
	key := (&cache.Key{}).
		Add("stage", "compile").
		Add("tool", opts.ToolVersion).
		Add("language", app.Language).
		Add("target", target.Name).
		Add("toolchain", tc).
		Add("source", src).
		Add("main", app.Main).
		Add("program", l.Program(app)).
		Sum()
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	dir, hit, err := opts.Cache.Fill(ctx, "bundles", key, func(ctx context.Context, dir string) error {
		rootfs := filepath.Join(dir, RootfsDir)
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return err
		}
		launch, err := l.Build(ctx, app, rootfs, log)
		if err != nil {
			return err
		}
		if err := checkProgram(target, rootfs, launch, l.Program(app)); err != nil {
			return fmt.Errorf("app %s: %w", app.Name, err)
		}
		return FinishBundle(dir, Manifest{App: app.Name, Language: app.Language, Toolchain: tc, Program: l.Program(app), Key: key}, launch)
	})
	if err != nil {
		return nil, err
	}
	return ReadBundle(dir, hit)
}

// checkProgram runs the target's check on the program the bundle starts
// (an interpreter, for scripts).
func checkProgram(t Target, rootfs string, launch Launch, program string) error {
	if t.CheckProgram == nil {
		return nil
	}
	first := program
	if len(launch.Argv) > 0 {
		first = launch.Argv[0]
	}
	if err := t.CheckProgram(filepath.Join(rootfs, filepath.FromSlash(first)), first); err != nil {
		return fmt.Errorf("cannot run on base %s: %w", t.Name, err)
	}
	return nil
}

// ReadBundle reads the bundle in a cache entry. The manifest is always read
// from the entry: another app (or process) with the same key may have
// filled it.
func ReadBundle(dir string, cached bool) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var man Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	return &Result{Dir: dir, Manifest: man, Cached: cached}, nil
}

// FinishBundle completes man with how to launch the program and the memory
// the bundle needs, and writes it into the bundle directory dir, whose
// rootfs is complete. Every executor ends a compile with it, so that the
// same tree gives the same manifest.
func FinishBundle(dir string, man Manifest, launch Launch) error {
	man.Argv, man.Env, man.Dir, man.EmulatedEnv = launch.Argv, launch.Env, launch.Dir, launch.EmulatedEnv
	sort.Strings(man.Env)
	var err error
	if man.MemoryMiB, err = memoryFor(filepath.Join(dir, RootfsDir), launch.MemoryMiB); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(man, "", "  ")
	return os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644)
}

// SourceDigest digests app.Source and the extra input folders, honouring
// their ignore files, through sc when set (nil reads every file). Folders are named relative to the source, so that a
// project moved or cloned elsewhere keeps its keys (the builds are
// -trimpath).
func SourceDigest(app *lang.App, extra []string, sc *cache.StatCache) (string, error) {
	var src strings.Builder
	for _, dir := range append([]string{app.Source}, extra...) {
		m, err := ignore.Load(dir)
		if err != nil {
			return "", err
		}
		d, err := cache.TreeDigestWith(dir, m, sc)
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", dir, err)
		}
		rel, err := filepath.Rel(app.Source, dir)
		if err != nil {
			rel = dir
		}
		fmt.Fprintf(&src, "%s %s\n", filepath.ToSlash(rel), d)
	}
	return src.String(), nil
}

package compile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

const pythonHint = "install Python 3: apt-get install python3"

// pythonLang packs the host's python3 (the interpreter found in PATH, its
// shared libraries, and its standard library without tests, IDLE, tkinter,
// the static library and byte-code caches) with the app's source in /app.
// A requirements.txt is installed with pip --target into
// /app/.python-packages. Everything is compiled to byte code at build
// time (hash-based .pyc files, reproducible). The app runs as
// `python3 /app/MAIN` with PYTHONDONTWRITEBYTECODE and PYTHONUNBUFFERED
// set.
type pythonLang struct{}

// pythonPackages is where requirements.txt is installed.
const pythonPackages = AppDir + "/.python-packages"

// PythonPackages is where requirements.txt is installed in the bundle.
const PythonPackages = pythonPackages

// PythonInfo is what the interpreter says about itself
// (PythonInfoScript).
type PythonInfo = pythonInfo

// PythonInfoScript prints, run by the interpreter with -I, its PythonInfo
// as JSON.
const PythonInfoScript = pythonInfoScript

// pythonInfo is what the interpreter says about itself.
type pythonInfo struct {
	Exe      string   `json:"exe"`     // the real interpreter binary
	Version  string   `json:"version"` // sys.version
	Stdlib   string   `json:"stdlib"`  // sysconfig's stdlib
	Platlib  string   `json:"platlib"` // sysconfig's platstdlib
	Dynload  []string `json:"dynload"` // sys.path entries holding extension modules outside stdlib
	ImplName string   `json:"impl"`    // cpython
	Major    int      `json:"major"`   // 3
	Minor    int      `json:"minor"`   // 11
}

const pythonInfoScript = `import json, os, sys, sysconfig
std = sysconfig.get_path("stdlib")
dyn = [os.path.realpath(p) for p in sys.path if p.endswith("lib-dynload") and os.path.isdir(p) and not os.path.realpath(p).startswith(os.path.realpath(std) + os.sep)]
print(json.dumps({"exe": os.path.realpath(sys.executable), "version": sys.version, "stdlib": os.path.realpath(std),
  "platlib": os.path.realpath(sysconfig.get_path("platstdlib")), "dynload": dyn,
  "impl": sys.implementation.name, "major": sys.version_info[0], "minor": sys.version_info[1]}))`

func pythonAbout(ctx context.Context) (*pythonInfo, error) {
	res, err := run.Run(ctx, run.Cmd{Path: "python3", Args: []string{"-I", "-c", pythonInfoScript}, Hint: pythonHint})
	if err != nil {
		if _, ok := err.(*run.NotFoundError); ok {
			return nil, err
		}
		return nil, fmt.Errorf("ask python3 about itself: %w", err)
	}
	return ParsePythonInfo(res.Stdout)
}

// ParsePythonInfo reads PythonInfoScript's answer and checks that it is
// CPython 3.
func ParsePythonInfo(out []byte) (*PythonInfo, error) {
	var info pythonInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("python3: unexpected answer %q: %w", out, err)
	}
	if info.ImplName != "cpython" || info.Major != 3 {
		return nil, fmt.Errorf("python3 is %s %d.%d (%s); unikfile packs CPython 3", info.ImplName, info.Major, info.Minor, info.Exe)
	}
	return &info, nil
}

// Libs are the folders of the standard library and its extension
// modules that a bundle holds (with PythonSkip left out).
func (info *pythonInfo) Libs() []string {
	libs := []string{info.Stdlib}
	if info.Platlib != info.Stdlib && !strings.HasPrefix(info.Platlib, info.Stdlib+"/") {
		libs = append(libs, info.Platlib)
	}
	return append(libs, info.Dynload...)
}

func (pythonLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	info, err := pythonAbout(ctx)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(info)
	return fmt.Sprintf("python3 %s; libs %s", b, hostLibsDigest()), nil
}

func (pythonLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

// PythonMain is the script to run, relative to the source.
func PythonMain(app *lang.App) (string, error) { return pythonMain(app) }

func pythonMain(app *lang.App) (string, error) {
	return mainFile(app, "main.py", "app.py", "server.py", "__main__.py")
}

func (pythonLang) Program(app *lang.App) string {
	m, err := pythonMain(app)
	if err != nil {
		m = "main.py"
	}
	return path.Join(AppDir, m)
}

// What of the standard library an app does not need: folders by name or
// name prefix, files by name, prefix or suffix.
var (
	pythonSkipDirs         = []string{"__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages", "dist-packages", "lib2to3"}
	pythonSkipDirPrefixes  = []string{"config-"}
	pythonSkipFiles        = []string{"turtle.py"}
	pythonSkipFilePrefixes = []string{"_tkinter"}
	pythonSkipFileSuffixes = []string{".pyc", ".a"}
)

// pythonSkip names what of the standard library an app does not need.
func pythonSkip(rel string, isDir bool) bool {
	base := path.Base(rel)
	has := func(list []string, f func(string, string) bool) bool {
		for _, x := range list {
			if f(base, x) {
				return true
			}
		}
		return false
	}
	eq := func(a, b string) bool { return a == b }
	if isDir {
		return has(pythonSkipDirs, eq) || has(pythonSkipDirPrefixes, strings.HasPrefix)
	}
	return has(pythonSkipFiles, eq) || has(pythonSkipFilePrefixes, strings.HasPrefix) || has(pythonSkipFileSuffixes, strings.HasSuffix)
}

// PythonSkipPatterns are pythonSkip's rules as BuildKit copy exclusions
// (patterns cannot tell folders from files: a file named like a skipped
// folder is left out too).
func PythonSkipPatterns() []string {
	var out []string
	for _, d := range pythonSkipDirs {
		out = append(out, "**/"+d)
	}
	for _, p := range append(append([]string(nil), pythonSkipDirPrefixes...), pythonSkipFilePrefixes...) {
		out = append(out, "**/"+p+"*")
	}
	for _, f := range pythonSkipFiles {
		out = append(out, "**/"+f)
	}
	for _, s := range pythonSkipFileSuffixes {
		out = append(out, "**/*"+s)
	}
	return out
}

// PipInstallArgs install requirements file req into target (the
// interpreter runs them).
func PipInstallArgs(target, req string) []string {
	return []string{"-m", "pip", "install", "--no-compile", "--no-cache-dir", "--disable-pip-version-check", "--target", target, "-r", req}
}

// PythonCompileArgs compile dirs (folders in rootfs) to byte code that
// records their paths in the image. Byte code is compiled at build time,
// not at every boot: under emulation compiling the modules an HTTP server
// imports takes minutes. Hash-based .pyc files that Python does not check
// against their sources (whose times the image does not keep) are the
// same bytes on every build.
func PythonCompileArgs(rootfs string, dirs []string) []string {
	return append([]string{"-I", "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", "-s", rootfs, "-p", "/"}, dirs...)
}

// PythonLaunch starts main (relative to /app) with info's interpreter;
// packages says requirements.txt was installed; more is the closure's
// environment.
func PythonLaunch(info *PythonInfo, main string, packages bool, more []string) Launch {
	env := []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"}
	if packages {
		env = append(env, "PYTHONPATH="+pythonPackages)
	}
	return Launch{Argv: []string{info.Exe, path.Join(AppDir, main)}, Env: append(env, more...), Dir: AppDir}
}

// PythonRoots are the ELF roots of a Python bundle's closure.
func PythonRoots(info *PythonInfo, packages bool) []string {
	roots := append([]string{info.Exe}, info.Libs()...)
	if packages {
		roots = append(roots, pythonPackages)
	}
	return roots
}

// FileHasContent reports whether file exists and holds more than blanks
// and comments (a requirements.txt to install).
func FileHasContent(file string) bool { return fileHasContent(file) }

func (l pythonLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	main, err := pythonMain(app)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	info, err := pythonAbout(ctx)
	if err != nil {
		return Launch{}, err
	}
	if err := copyFile(info.Exe, filepath.Join(rootfs, filepath.FromSlash(info.Exe)), 0o755); err != nil {
		return Launch{}, err
	}
	libs := info.Libs()
	for _, d := range libs {
		if err := copyHostPath(d, rootfs, pythonSkip); err != nil {
			return Launch{}, fmt.Errorf("copy the Python standard library: %w", err)
		}
	}
	if err := copySource(app.Source, rootfs); err != nil {
		return Launch{}, err
	}
	packages := fileHasContent(filepath.Join(app.Source, "requirements.txt"))
	if packages {
		target := filepath.Join(rootfs, filepath.FromSlash(pythonPackages))
		if _, err := run.Run(ctx, run.Cmd{
			Path:   info.Exe,
			Args:   PipInstallArgs(target, filepath.Join(app.Source, "requirements.txt")),
			Stdout: log, Stderr: log,
		}); err != nil {
			return Launch{}, fmt.Errorf("app %s: pip install -r requirements.txt failed (pip must be installed for %s: apt-get install python3-pip, and the package index reachable):\n%s", app.Name, info.Exe, compilerOutput(err))
		}
	}
	compileDirs := []string{filepath.Join(rootfs, "app")}
	for _, d := range libs {
		compileDirs = append(compileDirs, filepath.Join(rootfs, filepath.FromSlash(d)))
	}
	if _, err := run.Run(ctx, run.Cmd{
		Path:   info.Exe,
		Args:   PythonCompileArgs(rootfs, compileDirs),
		Stdout: log, Stderr: log,
	}); err != nil {
		return Launch{}, fmt.Errorf("app %s: compiling to byte code failed:\n%s", app.Name, compilerOutput(err))
	}
	more, err := closure(app, rootfs, PythonRoots(info, packages)...)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return PythonLaunch(info, main, packages, more), nil
}

// fileHasContent reports whether file exists and holds more than blanks
// and comments.
func fileHasContent(file string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

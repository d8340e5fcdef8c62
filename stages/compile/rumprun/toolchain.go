package rumprun

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Env names the environment variable that points at a toolchain folder
// (the folder build-rr.sh's -d installs into: bin/, lib/, rumprun-x86_64/).
const Env = "UNIKFILE_RUMPRUN_TOOLCHAIN"

// Tuple is the compilers' target, the prefix of their names.
const Tuple = "x86_64-rumprun-netbsd"

// Platform is the Rumprun platform the toolchain must have been built for
// (build-rr.sh's "hw": bare metal and hypervisors, booted by multiboot).
const Platform = "hw"

// BuildHint says how to get a toolchain; it ends every error about a
// missing one.
const BuildHint = "build one from Rumprun's sources (https://github.com/rumpkernel/rumprun; " +
	"git submodule update --init; then, with Debian's gcc 12: " +
	`HOST_CFLAGS="-O -fcommon" ./build-rr.sh -j2 -d /opt/rumprun hw -- -F CFLAGS=-fcommon -F CFLAGS=-Wno-error -V NOGCCERROR=1` +
	", about 6 minutes on 2 cores) and point unikfile at that folder: rump { toolchain = \"/opt/rumprun\" } in the app, " +
	Env + "=/opt/rumprun, or /opt/rumprun/bin in PATH (see the README's \"The rump base\")"

// Toolchain is a Rumprun toolchain folder.
type Toolchain struct {
	// Dir is the folder, absolute and with symbolic links resolved (the
	// objects it links record it, and rumprun-bake reads it back).
	Dir string
	// From says where Dir came from, for messages.
	From string
}

// NotFoundError says no toolchain was found, where unikfile looked, and how
// to get one.
type NotFoundError struct {
	Looked []string
}

func (e *NotFoundError) Error() string {
	return "no Rumprun toolchain found (looked at " + strings.Join(e.Looked, ", ") + "): " + BuildHint
}

// Resolve finds the toolchain: setting (the app's rump { toolchain },
// absolute) first, then $UNIKFILE_RUMPRUN_TOOLCHAIN from environ (nil:
// os.Environ()), then the folder above the first x86_64-rumprun-netbsd-gcc
// in PATH. A folder the user named that is not a toolchain is an error,
// not a reason to look further.
func Resolve(setting string, environ []string) (*Toolchain, error) {
	if environ == nil {
		environ = os.Environ()
	}
	if setting != "" {
		return named(setting, "rump { toolchain } in the Unikfile")
	}
	if v := lookupEnv(environ, Env); v != "" {
		return named(v, "$"+Env)
	}
	looked := []string{"rump { toolchain } (unset)", "$" + Env + " (unset)"}
	gcc := Tuple + "-gcc"
	if p, err := lookPath(gcc, lookupEnv(environ, "PATH")); err == nil {
		return named(filepath.Dir(filepath.Dir(p)), gcc+" in PATH")
	}
	return nil, &NotFoundError{Looked: append(looked, gcc+" in PATH (not found)")}
}

// named checks that dir (from from) is a toolchain for the hw platform.
func named(dir, from string) (*Toolchain, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	t := &Toolchain{Dir: abs, From: from}
	for _, f := range []string{t.Bake(), t.CC(), t.CXX(), t.platformLib()} {
		if _, err := os.Stat(f); err != nil {
			what := "not a Rumprun toolchain"
			if f == t.platformLib() {
				what = "not a Rumprun toolchain for the " + Platform + " platform (build-rr.sh ... " + Platform + ")"
			}
			return nil, fmt.Errorf("%s (from %s) is %s: %s is missing; %s", abs, from, what, f, BuildHint)
		}
	}
	return t, nil
}

// CC, CXX and Bake are the toolchain's programs; CMakeFile is its CMake
// toolchain file.
func (t *Toolchain) CC() string   { return filepath.Join(t.Dir, "bin", Tuple+"-gcc") }
func (t *Toolchain) CXX() string  { return filepath.Join(t.Dir, "bin", Tuple+"-g++") }
func (t *Toolchain) Bake() string { return filepath.Join(t.Dir, "bin", "rumprun-bake") }
func (t *Toolchain) CMakeFile() string {
	return filepath.Join(t.Dir, "rumprun-x86_64", "share", Tuple+"-toolchain.cmake")
}

// platformLib is the folder of the hw platform's libraries, which
// rumprun-bake links images from.
func (t *Toolchain) platformLib() string {
	return filepath.Join(t.Dir, "rumprun-x86_64", "lib", "rumprun-"+Platform)
}

// Environ is what the toolchain's programs need besides the caller's
// environment: its bin folder first in PATH (the wrappers call each
// other by name) and rumprun-bake's banner silenced.
func (t *Toolchain) Environ(environ []string) []string {
	path := filepath.Join(t.Dir, "bin")
	if p := lookupEnv(environ, "PATH"); p != "" {
		path += string(os.PathListSeparator) + p
	}
	out := []string{"PATH=" + path, "RUMPRUN_WARNING_STFU=please"}
	for _, e := range environ {
		if k, _, _ := strings.Cut(e, "="); k != "PATH" && k != "RUMPRUN_WARNING_STFU" {
			out = append(out, e)
		}
	}
	return out
}

func lookupEnv(environ []string, key string) string {
	v := ""
	for _, e := range environ {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// lookPath is exec.LookPath against the PATH of an environment.
func lookPath(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

package compile

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
)

// Hints for the C and C++ toolchains.
const (
	gccHint   = "install a C compiler: apt-get install gcc (or set CC)"
	gxxHint   = "install a C++ compiler: apt-get install g++ (or set CXX)"
	makeHint  = "install make: apt-get install make"
	cmakeHint = "install CMake: apt-get install cmake"
)

// cLang builds C (and, with cxx, C++) apps with the host's compiler, in a
// copy of the source so that the source stays untouched:
//   - with CMakeLists.txt: cmake (Release) and cmake --build;
//   - with a Makefile: make;
//   - otherwise the source files of the tree (.c; for C++ also .cc, .cpp,
//     .cxx) are compiled into one static program.
//
// The program is main (relative to the source for make, to the build
// folder for CMake) or the one executable the build produced; it is
// installed as /app/main, stripped, with its shared-library closure when
// it is dynamic. CFLAGS/CXXFLAGS carry -ffile-prefix-map so that the build
// folder's name does not reach the binary.
type cLang struct{ cxx bool }

func (c cLang) compiler() (name, envVar, hint string) {
	if c.cxx {
		return "g++", "CXX", gxxHint
	}
	return "gcc", "CC", gccHint
}

// BuildSystem is how a C or C++ source builds: "cmake", "make" or ""
// (its listed sources). Both executors ask it of the app's source.
func BuildSystem(src string) string {
	if _, err := os.Stat(filepath.Join(src, "CMakeLists.txt")); err == nil {
		return "cmake"
	}
	for _, n := range []string{"GNUmakefile", "makefile", "Makefile"} {
		if _, err := os.Stat(filepath.Join(src, n)); err == nil {
			return "make"
		}
	}
	return ""
}

func (c cLang) cc() (string, string) {
	name, envVar, hint := c.compiler()
	if v := os.Getenv(envVar); v != "" {
		name = v
	}
	return name, hint
}

// cross is the base's own C and C++ toolchain for app, or nil for the
// host's.
func cross(app *lang.App) (*Cross, error) {
	t, err := TargetFor(app.Base)
	if err != nil || t.Cross == nil {
		return nil, err
	}
	return t.Cross(app)
}

func (c cLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	x, err := cross(app)
	if err != nil {
		return "", err
	}
	var id string
	if x != nil {
		// A cross toolchain is what it is: $CC and $CXX name host
		// compilers and do not apply.
		if id, err = x.Identity(ctx); err != nil {
			return "", err
		}
		if c.cxx {
			id += "; cxxflags " + x.CXXFlags
		}
	} else {
		cc, hint := c.cc()
		if id, err = toolIdentity(ctx, cc, hint, "--version"); err != nil {
			return "", err
		}
	}
	switch BuildSystem(app.Source) {
	case "cmake":
		t, err := toolIdentity(ctx, "cmake", cmakeHint, "--version")
		if err != nil {
			return "", err
		}
		id += "; " + t
		fallthrough // CMake's default generator runs make
	case "make":
		t, err := toolIdentity(ctx, "make", makeHint, "--version")
		if err != nil {
			return "", err
		}
		id += "; " + t
	}
	for _, v := range []string{"CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS"} {
		id += fmt.Sprintf("; %s=%q", v, os.Getenv(v))
	}
	return id, nil
}

func (cLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

func (cLang) Program(*lang.App) string { return AppDir + "/main" }

func (c cLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	work, err := os.MkdirTemp("", "unikfile-c-")
	if err != nil {
		return Launch{}, err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := copySourceTo(app.Source, src); err != nil {
		return Launch{}, err
	}
	cc, hint := c.cc()
	x, err := cross(app)
	if err != nil {
		return Launch{}, err
	}
	target, err := TargetFor(app.Base)
	if err != nil {
		return Launch{}, err
	}
	flags := CFlags(work)
	cxxDefault := ""
	isProgram := func(file, _ string) error { return checkExecutable(file) }
	if x != nil {
		cc, hint = x.CC, "the "+x.Name+" toolchain's C compiler"
		if c.cxx {
			cc, hint = x.CXX, "the "+x.Name+" toolchain's C++ compiler"
		}
		cxxDefault = x.CXXFlags
		isProgram = x.Program
	}
	env := run.Environ(
		"CFLAGS="+strings.TrimSpace(os.Getenv("CFLAGS")+" "+flags),
		"CXXFLAGS="+strings.TrimSpace(cxxDefault+" "+os.Getenv("CXXFLAGS")+" "+flags),
	)
	if x != nil {
		env = x.Environ(env)
	}
	name, _, _ := c.compiler()
	lang := CLanguage(c.cxx)
	fail := func(what string, err error) (Launch, error) {
		if _, ok := err.(*run.NotFoundError); ok {
			return Launch{}, err
		}
		return Launch{}, fmt.Errorf("%s build of %s (%s) failed:\n%s", lang, app.Name, what, compilerOutput(err))
	}
	jobs := strconv.Itoa(runtime.NumCPU())
	var bin string
	switch BuildSystem(src) {
	case "cmake":
		out := filepath.Join(work, "build")
		args := CMakeConfigureArgs(src, out, cc, c.cxx)
		if x != nil {
			args = append(args[:len(args)-1], "-DCMAKE_TOOLCHAIN_FILE="+x.CMakeToolchain)
		}
		if _, err := run.Run(ctx, run.Cmd{Path: "cmake", Args: args, Env: env, Stdout: log, Stderr: log, Hint: cmakeHint}); err != nil {
			return fail("cmake", err)
		}
		if _, err := run.Run(ctx, run.Cmd{Path: "cmake", Args: CMakeBuildArgs(out, jobs), Env: env, Stdout: log, Stderr: log, Hint: cmakeHint}); err != nil {
			return fail("cmake --build", err)
		}
		if bin, err = pickProgram(app, out, isProgram); err != nil {
			return Launch{}, err
		}
	case "make":
		args := MakeArgs(jobs, cc, c.cxx)
		if x != nil {
			args = []string{"-j", jobs, "CC=" + x.CC, "CXX=" + x.CXX, "AR=" + x.AR, "RANLIB=" + x.RANLIB}
		}
		if _, err := run.Run(ctx, run.Cmd{Path: "make", Args: args, Dir: src, Env: env, Stdout: log, Stderr: log, Hint: makeHint}); err != nil {
			return fail("make", err)
		}
		if bin, err = pickProgram(app, src, isProgram); err != nil {
			return Launch{}, err
		}
	default:
		srcs, err := CSources(app, c.cxx)
		if err != nil {
			return Launch{}, err
		}
		bin = filepath.Join(work, "main")
		// Linked as the base wants it: static on linux, so that the
		// program needs nothing from the host at run time; PIE on OSv.
		args := target.CLinkArgs(flags, bin, srcs)
		if c.cxx {
			args = append(strings.Fields(cxxDefault), args...)
		}
		if _, err := run.Run(ctx, run.Cmd{Path: cc, Args: args, Dir: src, Env: env, Stdout: log, Stderr: log, Hint: hint}); err != nil {
			return fail(name+" "+strings.Join(srcs, " "), err)
		}
	}
	if x != nil {
		return installCrossProgram(ctx, x, bin, rootfs)
	}
	return installProgram(ctx, app, bin, rootfs)
}

// installCrossProgram puts a program of a cross toolchain at /app/main
// with its symbols (the base links it further) but without debugging
// information.
func installCrossProgram(ctx context.Context, x *Cross, bin, rootfs string) (Launch, error) {
	if err := x.Program(bin, NativeProgram); err != nil {
		return Launch{}, err
	}
	out := filepath.Join(rootfs, filepath.FromSlash(NativeProgram))
	if err := copyFile(bin, out, 0o755); err != nil {
		return Launch{}, err
	}
	if _, err := run.Run(ctx, run.Cmd{Path: "strip", Args: []string{"--strip-debug", out}, Hint: "install binutils: apt-get install binutils"}); err != nil {
		return Launch{}, fmt.Errorf("strip %s: %w", bin, err)
	}
	return Launch{}, nil
}

// copySourceTo copies app's source (honouring the ignore files) to dst.
func copySourceTo(src, dst string) error {
	tmp := dst + ".root"
	if err := copySource(src, tmp); err != nil {
		return err
	}
	return os.Rename(filepath.Join(tmp, strings.TrimPrefix(AppDir, "/")), dst)
}

// installProgram puts the built program at /app/main, stripped, with its
// shared-library closure as app's base wants it.
func installProgram(ctx context.Context, app *lang.App, bin, rootfs string) (Launch, error) {
	out, err := PlaceProgram(bin, rootfs)
	if err != nil {
		return Launch{}, err
	}
	if _, err := run.Run(ctx, run.Cmd{Path: "strip", Args: StripArgs(out), Hint: "install binutils: apt-get install binutils"}); err != nil {
		return Launch{}, fmt.Errorf("strip %s: %w", bin, err)
	}
	env, err := closure(app, rootfs, NativeProgram)
	if err != nil {
		return Launch{}, err
	}
	return Launch{Env: env, Dir: AppDir}, nil
}

// PlaceProgram checks that bin is an x86-64 program and copies it to
// /app/main in rootfs, returning the copy's path.
func PlaceProgram(bin, rootfs string) (string, error) {
	if err := checkExecutable(bin); err != nil {
		return "", err
	}
	out := filepath.Join(rootfs, filepath.FromSlash(NativeProgram))
	return out, copyFile(bin, out, 0o755)
}

// NativeProgram is where a compiled program (C, C++, Rust) goes.
const NativeProgram = AppDir + "/main"

// StripArgs are strip's arguments for a program of the bundle: every
// executor strips with them.
func StripArgs(file string) []string { return []string{"--strip-all", file} }

// ProgramLaunch completes a bundle holding a compiled program at
// NativeProgram with its shared-library closure taken from from, and
// says how to start it (the linux base).
func ProgramLaunch(rootfs string, from elfdeps.FS) (Launch, error) {
	env, err := Closure(rootfs, from, NativeProgram)
	if err != nil {
		return Launch{}, err
	}
	return Launch{Env: env, Dir: AppDir}, nil
}

// CLanguage is the language's name in messages.
func CLanguage(cxx bool) string { return map[bool]string{false: "C", true: "C++"}[cxx] }

// CCompiler is the compiler's default name and the variable that
// overrides it.
func CCompiler(cxx bool) (name, envVar string) {
	n, v, _ := cLang{cxx: cxx}.compiler()
	return n, v
}

// CFlags are the flags added to CFLAGS and CXXFLAGS when the build runs
// in folder work (the copy of the source is work/src): its name does not
// reach the binary.
func CFlags(work string) string { return "-O2 -ffile-prefix-map=" + work + "=." }

// CMakeConfigureArgs configure a CMake build of src in out with compiler cc.
func CMakeConfigureArgs(src, out, cc string, cxx bool) []string {
	ccVar := "-DCMAKE_C_COMPILER=" + cc
	if cxx {
		ccVar = "-DCMAKE_CXX_COMPILER=" + cc
	}
	return []string{"-S", src, "-B", out, "-DCMAKE_BUILD_TYPE=Release", ccVar}
}

// CMakeBuildArgs run the build configured in out.
func CMakeBuildArgs(out, jobs string) []string { return []string{"--build", out, "-j", jobs} }

// MakeArgs run make with compiler cc.
func MakeArgs(jobs, cc string, cxx bool) []string {
	if cxx {
		return []string{"-j", jobs, "CXX=" + cc}
	}
	return []string{"-j", jobs, "CC=" + cc}
}

// CStaticArgs compile the listed sources srcs (relative to the source
// folder) into one static program bin, for the linux base: it then needs
// nothing from the host at run time.
func CStaticArgs(flags, bin string, srcs []string) []string {
	return targets["linux"].CLinkArgs(flags, bin, srcs)
}

// CLinkArgs compile the listed sources srcs (relative to the source
// folder) into one program bin linked as the target wants it.
func (t Target) CLinkArgs(flags, bin string, srcs []string) []string {
	args := append(strings.Fields(flags), t.CLink...)
	args = append(args, "-o", bin)
	return append(args, srcs...)
}

// CSources lists the C (or C and C++) sources of app's source, without
// what its ignore files leave out, relative and sorted (the order of the
// compiler's arguments), or says there are none.
func CSources(app *lang.App, cxx bool) ([]string, error) {
	exts := map[string]bool{".c": true}
	if cxx {
		for _, e := range []string{".cc", ".cpp", ".cxx", ".C"} {
			exts[e] = true
		}
	}
	m, err := loadIgnore(app.Source)
	if err != nil {
		return nil, err
	}
	var srcs []string
	err = filepath.WalkDir(app.Source, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(app.Source, p)
		if err != nil || rel == "." {
			return err
		}
		if m.Match(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && exts[filepath.Ext(p)] {
			srcs = append(srcs, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(srcs)
	if len(srcs) == 0 {
		return nil, fmt.Errorf("app %s: no %s sources in %s: add a Makefile, a CMakeLists.txt or source files", app.Name, CLanguage(cxx), app.Source)
	}
	return srcs, nil
}

// PickProgram is main (relative to dir) or the one executable ELF file a
// build left in dir.
func PickProgram(app *lang.App, dir string) (string, error) {
	return pickProgram(app, dir, func(file, _ string) error { return checkExecutable(file) })
}

// pickProgram is main (relative to dir) or the one executable program
// (isProgram) a build left in dir.
func pickProgram(app *lang.App, dir string, isProgram func(file, name string) error) (string, error) {
	if app.Main != "" && app.Main != "." {
		p := filepath.Join(dir, filepath.FromSlash(app.Main))
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("app %s: the build did not produce main = %q (looked for %s)", app.Name, app.Main, p)
		}
		return p, nil
	}
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Mode()&0o111 != 0 && isProgram(p, p) == nil && !strings.HasSuffix(p, ".so") && !strings.Contains(p, ".so.") && !strings.Contains(p, "CMakeFiles") {
			found = append(found, p)
		}
		return nil
	})
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("app %s: the build produced no executable program; set main = \"PATH\" to the program it builds", app.Name)
	}
	for i, f := range found {
		found[i], _ = filepath.Rel(dir, f)
	}
	return "", fmt.Errorf("app %s: the build produced several programs (%s); set main = \"PATH\" to the one to run", app.Name, strings.Join(found, ", "))
}

package includeos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
)

// ServiceSuffix ends the name of the ELF file os_add_executable links
// (TARGET.elf.bin).
const ServiceSuffix = ".elf.bin"

// Hints for the build tools.
const (
	cmakeHint = "install CMake: apt-get install cmake"
	ninjaHint = "install Ninja: apt-get install ninja-build (or make: apt-get install make)"
)

// Build is one service build.
type Build struct {
	SDK *SDK
	// Source is the service's source folder (a CMakeLists.txt using
	// find_package(IncludeOS) and os_add_executable). The build reads it
	// only.
	Source string
	// Dir is the build folder, empty or absent; one per service.
	Dir string
	// Main picks the service when the project links several: its target
	// name (httpd) or its file relative to Dir (sub/httpd.elf.bin).
	Main string
	// Jobs is the build's parallelism; 0 means the number of CPUs.
	Jobs int
	// Log receives CMake's and the compiler's output.
	Log io.Writer
	// TrimPrefix is replaced by "." in file names the compiler records
	// (-ffile-prefix-map), so that the folders' names do not reach the
	// service; "" leaves them.
	TrimPrefix string
}

// Generator is the CMake generator a build uses and the program it runs:
// Ninja when installed, else Unix Makefiles.
func Generator() (name, program string, err error) {
	if p, err := exec.LookPath("ninja"); err == nil {
		return "Ninja", p, nil
	}
	if p, err := exec.LookPath("make"); err == nil {
		return "Unix Makefiles", p, nil
	}
	return "", "", &run.NotFoundError{Program: "ninja", Hint: ninjaHint}
}

// CheckTools finds every program the SDK's toolchain file names.
func (s *SDK) CheckTools() error {
	for _, t := range s.Tools {
		if _, err := run.Look(t.Program, ToolHint(t.Program)); err != nil {
			return fmt.Errorf("the IncludeOS SDK in %s builds with %s (%s in %s): %w", s.Dir, t.Program, t.Var, ToolchainFile, err)
		}
	}
	return nil
}

// Run configures and builds the service and returns its ELF file in Dir.
func (b Build) Run(ctx context.Context) (string, error) {
	if err := b.SDK.CheckTools(); err != nil {
		return "", err
	}
	gen, _, err := Generator()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(b.Source, "CMakeLists.txt")); err != nil {
		return "", fmt.Errorf("no CMakeLists.txt in %s: an IncludeOS service is a CMake project that calls find_package(IncludeOS), include(os) and os_add_executable(NAME \"Title\" sources...)", b.Source)
	}
	log := b.Log
	if log == nil {
		log = io.Discard
	}
	tail := &tailWriter{max: 16 << 10}
	out := io.MultiWriter(log, tail)
	flags := ""
	if b.TrimPrefix != "" {
		flags = "-ffile-prefix-map=" + b.TrimPrefix + "=."
	}
	// The host's compiler flags are for the host: the SDK's toolchain
	// file sets the target's.
	env := run.Environ("CFLAGS="+flags, "CXXFLAGS="+flags, "CPPFLAGS=", "LDFLAGS=", "ASM_NASMFLAGS=")
	jobs := b.Jobs
	if jobs <= 0 {
		jobs = max(1, runtime.NumCPU())
	}
	step := func(what string, args ...string) error {
		tail.reset()
		_, err := run.Run(ctx, run.Cmd{Path: "cmake", Args: args, Env: env, Stdout: out, Stderr: out, Hint: cmakeHint})
		if err == nil {
			return nil
		}
		var nf *run.NotFoundError
		if errors.As(err, &nf) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("IncludeOS service build (%s) failed:\n%s", what, tail.lines(40))
	}
	if err := step("cmake", "-G", gen, "-S", b.Source, "-B", b.Dir,
		"-DCMAKE_TOOLCHAIN_FILE="+b.SDK.Toolchain(), "-DARCH=x86_64", "-DCMAKE_BUILD_TYPE=Release"); err != nil {
		return "", err
	}
	if err := step("cmake --build", "--build", b.Dir, "-j", strconv.Itoa(jobs)); err != nil {
		return "", err
	}
	return pickService(b.Dir, b.Main)
}

// pickService is the service ELF the build left in dir: main's, or the
// only one.
func pickService(dir, main string) (string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "CMakeFiles" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ServiceSuffix) {
			rel, _ := filepath.Rel(dir, p)
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(found)
	if main != "" && main != "." {
		m := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(main)), "./")
		for _, f := range found {
			if f == m || f == m+ServiceSuffix || strings.TrimSuffix(filepath.Base(f), ServiceSuffix) == m {
				return filepath.Join(dir, filepath.FromSlash(f)), nil
			}
		}
		return "", fmt.Errorf("the build produced no service %q (it produced %s): set main to the name given to os_add_executable", main, listOrNone(found))
	}
	switch len(found) {
	case 0:
		return "", errNoService
	case 1:
		return filepath.Join(dir, filepath.FromSlash(found[0])), nil
	}
	return "", fmt.Errorf("the build produced several services (%s): set main = \"NAME\" to the one to boot (the name given to os_add_executable)", strings.Join(found, ", "))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) reset() { t.buf = nil }

// lines is the last n lines written.
func (t *tailWriter) lines(n int) string {
	ls := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

package includeos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

// SDKEnv names an SDK for apps whose includeos block names none.
const SDKEnv = "UNIKFILE_INCLUDEOS_SDK"

// Files every SDK has, relative to its folder: the CMake toolchain file
// services are configured with, the CMake module that defines
// os_add_executable, and the kernel library.
const (
	ToolchainFile = "cmake/toolchain.cmake"
	ModuleFile    = "cmake/os.cmake"
	KernelLib     = "lib/libos.a"
)

// BuildHint says how to get an SDK; every "no SDK" error ends with it.
const BuildHint = "IncludeOS publishes no SDK to download: build one (about 15 minutes on 2 cores, no Nix) as unikfile's README says under \"The includeos base\" (IncludeOS 6fd33d3 with Debian 12's clang-19), then set includeos { sdk = \"/path/to/includeos-x86_64\" } in the app or " + SDKEnv

// Settings are an app's `includeos { ... }` block.
type Settings struct {
	// SDK is the SDK's folder, absolute; "" means SDKEnv.
	SDK string `json:"sdk,omitempty"`
}

// SettingsOf returns the app's includeos settings (zero for an app whose
// block was decoded by another base).
func SettingsOf(a *lang.App) Settings {
	if s, ok := a.BaseSettings.(*Settings); ok && s != nil {
		return *s
	}
	return Settings{}
}

// SDK is an IncludeOS SDK folder.
type SDK struct {
	// Dir is the folder, absolute and with symbolic links resolved.
	Dir string
	// Tools are the programs its toolchain file names, by the CMake
	// variable that names them, sorted by variable.
	Tools []Tool
}

// Tool is a program an SDK builds with.
type Tool struct {
	Var     string // CMAKE_CXX_COMPILER, ...
	Program string // as the toolchain file names it: clang++-19, /usr/bin/nasm
}

// Toolchain is the SDK's CMake toolchain file.
func (s *SDK) Toolchain() string { return filepath.Join(s.Dir, ToolchainFile) }

// Resolve finds the SDK for setting (an SDK folder, or "" for SDKEnv in
// environ) and checks it (Open).
func Resolve(setting string, environ []string) (*SDK, error) {
	dir, from := setting, "includeos { sdk }"
	if dir == "" {
		dir, from = run.Getenv(environ, SDKEnv), SDKEnv
	}
	if dir == "" {
		return nil, fmt.Errorf("no IncludeOS SDK: the app's includeos block names none and %s is unset; %s", SDKEnv, BuildHint)
	}
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		dir = abs
	}
	s, err := Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%s = %q: %w", from, dir, err)
	}
	return s, nil
}

// Open checks that dir is an IncludeOS SDK (its toolchain file, os.cmake
// and kernel library) and reads the programs the toolchain file names.
func Open(dir string) (*SDK, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("no IncludeOS SDK there (%w); %s", err, BuildHint)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("not a folder: an IncludeOS SDK is a folder holding %s; %s", ToolchainFile, BuildHint)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range []string{ToolchainFile, ModuleFile, KernelLib} {
		if _, err := os.Stat(filepath.Join(real, f)); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("not an IncludeOS SDK: it has no %s (an SDK holds %s, %s and %s); %s",
			strings.Join(missing, ", "), ToolchainFile, ModuleFile, KernelLib, BuildHint)
	}
	tc, err := os.ReadFile(filepath.Join(real, ToolchainFile))
	if err != nil {
		return nil, err
	}
	return &SDK{Dir: real, Tools: parseTools(string(tc))}, nil
}

// toolVars are the CMake variables a toolchain file sets to the programs a
// service build runs.
var toolVars = map[string]bool{
	"CMAKE_C_COMPILER": true, "CMAKE_CXX_COMPILER": true, "CMAKE_AR": true, "CMAKE_RANLIB": true,
	"CMAKE_LINKER": true, "CMAKE_OBJCOPY": true, "CMAKE_STRIP": true, "CMAKE_ASM_NASM_COMPILER": true,
}

// setLine is `set(VAR value)` with a plain value (no variables, no quotes).
var setLine = regexp.MustCompile(`(?m)^\s*set\s*\(\s*([A-Z_]+)\s+([^\s"${}()]+)\s*\)`)

// parseTools reads the programs a toolchain file sets. Values that use
// variables are not programs of the host and are left out.
func parseTools(text string) []Tool {
	seen := map[string]string{}
	for _, m := range setLine.FindAllStringSubmatch(text, -1) {
		if toolVars[m[1]] {
			seen[m[1]] = m[2]
		}
	}
	out := make([]Tool, 0, len(seen))
	for v, p := range seen {
		out = append(out, Tool{Var: v, Program: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Var < out[j].Var })
	return out
}

// ToolHint says which Debian package gives program.
func ToolHint(program string) string {
	base := filepath.Base(program)
	switch {
	case strings.HasPrefix(base, "clang"):
		v := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(base, "clang++"), "clang"), "-")
		if v == "" {
			return "install clang: apt-get install clang"
		}
		return "install clang " + v + ": apt-get install clang-" + v
	case strings.HasPrefix(base, "llvm-"):
		if i := strings.LastIndex(base, "-"); i > len("llvm") {
			return "install LLVM's tools: apt-get install llvm-" + base[i+1:]
		}
		return "install LLVM's tools: apt-get install llvm"
	case base == "nasm":
		return "install NASM: apt-get install nasm"
	case base == "ld.bfd", base == "ld", base == "objcopy", base == "strip":
		return "install binutils: apt-get install binutils"
	}
	return "install " + base
}

// errNoService is returned when a build made no service ELF.
var errNoService = errors.New("the build produced no IncludeOS service (no *.elf.bin): the CMakeLists.txt must call os_add_executable")

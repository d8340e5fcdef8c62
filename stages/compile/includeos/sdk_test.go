package includeos

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The programs of a toolchain file as the fixture's SDK writes it.
func TestParseTools(t *testing.T) {
	text := `get_filename_component(IOS_PKG "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(CMAKE_C_COMPILER clang-19)
set(CMAKE_CXX_COMPILER clang++-19)
set(CMAKE_AR llvm-ar-19)
  set( CMAKE_RANLIB   llvm-ranlib-19 )
set(CMAKE_OBJCOPY objcopy)
set(CMAKE_STRIP strip)
set(CMAKE_LINKER ld.bfd)
set(CMAKE_ASM_NASM_COMPILER /usr/bin/nasm)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "--target=x86_64-pc-linux-elf")
set(CMAKE_SYSROOT ${IOS_PKG}/x)
# set(CMAKE_LINKER ld.lld)
`
	want := []Tool{
		{"CMAKE_AR", "llvm-ar-19"}, {"CMAKE_ASM_NASM_COMPILER", "/usr/bin/nasm"}, {"CMAKE_CXX_COMPILER", "clang++-19"},
		{"CMAKE_C_COMPILER", "clang-19"}, {"CMAKE_LINKER", "ld.bfd"}, {"CMAKE_OBJCOPY", "objcopy"},
		{"CMAKE_RANLIB", "llvm-ranlib-19"}, {"CMAKE_STRIP", "strip"},
	}
	if got := parseTools(text); !reflect.DeepEqual(got, want) {
		t.Errorf("tools\n%v\nwant\n%v", got, want)
	}
}

func TestToolHint(t *testing.T) {
	for prog, want := range map[string]string{
		"clang++-19":     "apt-get install clang-19",
		"clang-19":       "apt-get install clang-19",
		"clang":          "apt-get install clang",
		"llvm-ar-19":     "apt-get install llvm-19",
		"llvm-ranlib-19": "apt-get install llvm-19",
		"/usr/bin/nasm":  "apt-get install nasm",
		"ld.bfd":         "apt-get install binutils",
	} {
		if got := ToolHint(prog); !strings.Contains(got, want) {
			t.Errorf("ToolHint(%s) = %q, want %q", prog, got, want)
		}
	}
}

func fakeSDK(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("set(CMAKE_CXX_COMPILER clang++-19)\n"), 0o644)
	}
	return dir
}

// Where an SDK comes from, and the errors that say how to get one.
func TestResolve(t *testing.T) {
	full := fakeSDK(t, ToolchainFile, ModuleFile, KernelLib)
	s, err := Resolve(full, nil)
	if err != nil || s.Dir == "" || len(s.Tools) != 1 {
		t.Fatalf("Resolve(setting): %+v, %v", s, err)
	}
	if s, err := Resolve("", []string{SDKEnv + "=" + full}); err != nil || s.Toolchain() != filepath.Join(s.Dir, ToolchainFile) {
		t.Fatalf("Resolve(env): %+v, %v", s, err)
	}
	for _, tc := range []struct {
		setting string
		environ []string
		want    []string
	}{
		{"", nil, []string{"no IncludeOS SDK", SDKEnv + " is unset", "README", "The includeos base"}},
		{filepath.Join(full, "nope"), nil, []string{"includeos { sdk } = ", "no IncludeOS SDK there", "README"}},
		{"", []string{SDKEnv + "=" + fakeSDK(t, ToolchainFile)}, []string{SDKEnv + " = ", "not an IncludeOS SDK: it has no cmake/os.cmake, lib/libos.a"}},
		{filepath.Join(full, ToolchainFile), nil, []string{"not a folder"}},
	} {
		_, err := Resolve(tc.setting, tc.environ)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%q, %q): %v; want %q", tc.setting, tc.environ, err, w)
			}
		}
	}
}

// A build of a folder without a CMakeLists.txt says what a service is.
func TestBuildNeedsCMakeLists(t *testing.T) {
	s := &SDK{Dir: t.TempDir()}
	_, err := Build{SDK: s, Source: t.TempDir(), Dir: t.TempDir()}.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "os_add_executable") {
		t.Fatalf("error %v", err)
	}
}

func TestPickService(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.elf.bin", "sub/b.elf.bin", "CMakeFiles/c.elf.bin", "d.o"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	for _, tc := range []struct{ main, want, err string }{
		{"", "", "several services (a.elf.bin, sub/b.elf.bin): set main"},
		{"b", "sub/b.elf.bin", ""},
		{"./sub/b.elf.bin", "sub/b.elf.bin", ""},
		{"a", "a.elf.bin", ""},
		{"c", "", `no service "c" (it produced a.elf.bin, sub/b.elf.bin)`},
	} {
		got, err := pickService(dir, tc.main)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("main %q: %q, %v; want %q", tc.main, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != filepath.Join(dir, tc.want) {
			t.Errorf("main %q: %q, %v; want %s", tc.main, got, err, tc.want)
		}
	}
	if _, err := pickService(t.TempDir(), ""); err != errNoService {
		t.Errorf("empty build: %v", err)
	}
}

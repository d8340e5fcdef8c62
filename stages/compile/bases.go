package compile

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
)

// A Target is how programs are built for one base: what the base's kernel
// can run decides how Go and C are linked, which shared libraries the
// kernel supplies itself, and which languages can run at all. The bundle's
// compile key includes the target's name, so one source compiled for two
// bases gives two bundles.
type Target struct {
	Name string
	// GoEnv is the environment of go build besides PATH, HOME and the
	// caches; GoFlags come before -o, and GoLDFlags is the -ldflags value.
	GoEnv     []string
	GoFlags   []string
	GoLDFlags string
	// CLink are the link flags of a C or C++ program compiled from listed
	// sources (no Makefile or CMakeLists.txt).
	CLink []string
	// Closure tunes the shared-library closure (elfdeps.Pack).
	Closure elfdeps.Options
	// Unsupported names the languages this base cannot run, with why.
	Unsupported map[string]string
	// Only, if set, are the only languages this base runs (every other
	// one is unsupported, for OnlyWhy).
	Only    []string
	OnlyWhy string
	// Solo5 is the Solo5 target (virtio, spt, hvt) a MirageOS unikernel
	// is configured for (mirage configure -t), on bases that run them.
	Solo5 string
	// CheckProgram, if set, says why the program the bundle starts (file
	// on the host, name in the image) cannot run on this base.
	CheckProgram func(file, name string) error
	// Cross, if set, is the base's own C and C++ toolchain for app (see
	// Cross); nil compiles with the host's.
	Cross func(app *lang.App) (*Cross, error)
	// Compiler, if set, builds the programs of every language the base
	// runs in place of the language table's own build: a base whose
	// programs are linked with its kernel by a toolchain of its own (an
	// SDK the app's block names).
	Compiler Language
}

// osvSupplied are the shared libraries OSv's kernel provides itself
// (core/elf.cc, program::program: the C library, its companions, the C++
// library and the dynamic loader). A program's DT_NEEDED entries for them
// resolve to the kernel, so the host's copies are never loaded.
var osvSupplied = []string{
	"ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
	"libresolv.so.2", "libstdc++.so.6", "libaio.so.1", "libxenstore.so.3.0", "libcrypt.so.1", "libutil.so",
	"libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1",
}

// notMirage is why the bases that run Linux programs do not run OCaml:
// unikfile builds OCaml apps as MirageOS unikernels only.
const notMirage = "OCaml apps are built as MirageOS unikernels, which run on base \"mirage\""

// targets is the table of bases, one line each.
var targets = map[string]Target{
	// Linux runs anything; programs are static where they can be, so that
	// the image needs nothing from the host.
	"linux": {
		Name:        "linux",
		GoEnv:       []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off"},
		GoLDFlags:   "-s -w -buildid=",
		CLink:       []string{"-static"},
		Unsupported: map[string]string{"ocaml": notMirage},
	},
	// OSv loads position-independent (PIE) and dynamically linked
	// programs into its one address space and supplies the C library
	// itself. Go must be an externally linked PIE: a static Go program,
	// and a PIE from Go's internal linker, start and then hang on the
	// fixture's kernel (OSv 0.57.0-398). Libraries come from RUNPATH, /
	// and /usr/lib only (no /etc/ld.so.conf, no LD_LIBRARY_PATH), hence
	// the links in /usr/lib.
	"osv": {
		Name:      "osv",
		GoEnv:     []string{"CGO_ENABLED=1", "GOOS=linux", "GOARCH=amd64", "GOWORK=off"},
		GoFlags:   []string{"-buildmode=pie"},
		GoLDFlags: "-s -w -buildid= -linkmode=external",
		CLink:     []string{"-fPIE", "-pie"},
		Closure:   elfdeps.Options{Provided: osvSupplied, LinkDir: "/usr/lib"},
		Unsupported: map[string]string{
			"node":  "Debian's node stops OSv with an assertion in its /proc/self/maps (mmu::procfs_maps)",
			"java":  "Debian's JVM crashes on OSv (a jump to a null pointer while it starts); OSv runs Java only through its own launcher, which unikfile does not build",
			"ocaml": notMirage,
		},
		CheckProgram: osvRunnable,
	},
	// Rumprun links a POSIX program with NetBSD's rump kernels into one
	// image: C and C++ only, compiled with Rumprun's own toolchain (its
	// programs are relocatable objects that the rump base bakes).
	"rump": {
		Name:  "rump",
		Cross: rumprunCross,
		Unsupported: map[string]string{
			"go":     "Go on Rumprun needed a patched Go 1.5 (rumprun-packages), which unikfile does not build",
			"rust":   "Rust's x86_64-rumprun-netbsd target was removed from rustc",
			"python": "Python on Rumprun needs an interpreter built with rumprun-packages, which unikfile does not build",
			"node":   "Node.js on Rumprun needs rumprun-packages, which unikfile does not build",
			"java":   "there is no JVM for Rumprun",
			"ocaml":  notMirage,
			"elf":    "Rumprun runs programs linked with its own toolchain, not Linux ELF binaries",
		},
		CheckProgram: rumprun.CheckProgram,
	},
	// MirageOS builds an OCaml program and the libraries it uses into a
	// unikernel of its own; there is no Linux program to run. The Solo5
	// target is virtio, the one QEMU boots (-kernel): an app compiles
	// once for every target, and the qemu provider is the one that runs
	// MirageOS unikernels (spt would need a compile per target).
	"mirage": {
		Name:    "mirage",
		Only:    []string{"ocaml"},
		OnlyWhy: "a MirageOS unikernel is an OCaml program (config.ml and its modules) built with the libraries it uses; programs in other languages run on base \"linux\"",
		Solo5:   "virtio",
	},
	// IncludeOS links one C or C++ service with the parts of its library
	// OS it uses into a 64-bit multiboot ELF, with CMake and the SDK's
	// toolchain file: nothing of the host's toolchains or libraries.
	"includeos": {
		Name:     "includeos",
		Compiler: includeosLang{},
		Unsupported: map[string]string{
			"go":     includeosOnly,
			"rust":   includeosOnly,
			"python": includeosOnly,
			"node":   includeosOnly,
			"java":   includeosOnly,
			"ocaml":  notMirage,
			"elf":    "IncludeOS links the service with its library OS from source; a Linux program needs a Linux kernel",
		},
	},
}

// includeosOnly is why a language cannot run on IncludeOS.
const includeosOnly = "IncludeOS runs a service written in C++ (or C) and linked with its library OS by CMake; its runtime has no Linux system calls for other languages' runtimes"

// TargetFor returns the target of base ("" is linux).
func TargetFor(base string) (Target, error) {
	if base == "" {
		base = "linux"
	}
	t, ok := targets[base]
	if !ok {
		var names []string
		for n := range targets {
			names = append(names, n)
		}
		sort.Strings(names)
		return Target{}, fmt.Errorf("base %q cannot be built by this version of unikfile (supported: %s)", base, strings.Join(names, ", "))
	}
	return t, nil
}

// CheckBase says why apps of language cannot run on base, or nil.
func CheckBase(base, language string) error {
	t, err := TargetFor(base)
	if err != nil {
		return err
	}
	if why, no := t.unsupported(language); no {
		return fmt.Errorf("language %q cannot run on base %q: %s; on %s choose one of %s, or base = %q", language, base, why, base, strings.Join(t.runs(), ", "), BaseFor(language))
	}
	return nil
}

// BaseFor is a base that runs language: linux when it does, else the
// first by name.
func BaseFor(language string) string {
	if _, no := targets["linux"].unsupported(language); !no {
		return "linux"
	}
	var names []string
	for n, t := range targets {
		if _, no := t.unsupported(language); !no {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "linux"
	}
	return names[0]
}

// unsupported says whether the target cannot run language, and why.
func (t Target) unsupported(language string) (string, bool) {
	if len(t.Only) > 0 && !slices.Contains(t.Only, language) {
		return t.OnlyWhy, true
	}
	why, no := t.Unsupported[language]
	return why, no
}

// runs are the languages of the table the target runs, sorted.
func (t Target) runs() []string {
	var out []string
	for n := range languages {
		if _, no := t.unsupported(n); !no {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// osvRunnable accepts what OSv's loader runs: a position-independent or
// dynamically linked ELF program (or shared object), and of Go programs
// only externally linked PIEs. name is the program's path in the image.
func osvRunnable(file, name string) error {
	f, err := elf.Open(file)
	if err != nil {
		return nil // not an ELF file: a script, checked through its interpreter
	}
	defer f.Close()
	interp := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = true
		}
	}
	if f.Type != elf.ET_DYN && !interp {
		return fmt.Errorf("%s is a static, position-dependent executable; OSv runs position-independent (PIE) or dynamically linked programs: build it with -fPIE -pie (Go: CGO_ENABLED=1 go build -buildmode=pie -ldflags=-linkmode=external)", name)
	}
	bi, err := buildinfo.ReadFile(file)
	if err != nil {
		return nil // not a Go program
	}
	mode := "exe"
	for _, s := range bi.Settings {
		if s.Key == "-buildmode" {
			mode = s.Value
		}
	}
	// Go's own linker writes no .init section; the C toolchain's start
	// files (crti.o) do. Build info does not record -ldflags under
	// -trimpath, so this is how an external link shows.
	external := f.Section(".init") != nil
	if mode != "pie" || !external {
		how := "Go's internal linker"
		if external {
			how = "the C linker"
		}
		return fmt.Errorf("%s is a Go program built with -buildmode=%s by %s; on OSv only an externally linked PIE runs (static and internally linked Go programs hang): build it with CGO_ENABLED=1 go build -buildmode=pie -ldflags=-linkmode=external", name, mode, how)
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LanguagesFor lists the languages apps on base can be written in,
// sorted; nil for a base that runs them all (or is not in the table).
func LanguagesFor(base string) []string {
	t, ok := targets[base]
	if !ok || (len(t.Unsupported) == 0 && len(t.Only) == 0) {
		return nil
	}
	return t.runs()
}

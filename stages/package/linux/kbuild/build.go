package kbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	pack "github.com/unikfile/unikfile/stages/package"
)

// DirEnv overrides where kernels are built and kept (Dir's default is
// <cache>/kbuild). Several caches can share one: the tests point every
// temporary cache at the machine's, so a kernel is built once per machine.
const DirEnv = "UNIKFILE_KBUILD_DIR"

// Dir is the kbuild folder for unikfile's cache folder cacheDir:
// $UNIKFILE_KBUILD_DIR from environ, else cacheDir/kbuild.
func Dir(cacheDir string, environ []string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], DirEnv+"="); ok && v != "" {
			return v
		}
	}
	return filepath.Join(cacheDir, "kbuild")
}

// recipe names the way kernels are built; changing how Build configures,
// compiles or packs a kernel means a new recipe, and every kernel is then
// built again. (unikfile's own version is deliberately not part of the
// key: a new unikfile must not rebuild kernels that did not change.)
const recipe = "kbuild/1"

// pvhRecipe is the part of the recipe of PVH kernels (a vmlinux for
// microVMs) beyond recipe: since pvh/2 the vmlinux is compacted
// (compactVMLinux) and mm/page_alloc.c compiled with -O2 (pvhMakeVars).
// It is its own string so that changing how microVM kernels are made
// does not rebuild the PC kernels.
const pvhRecipe = "pvh/2"

// kindKernel is the cache kind of built kernels under Dir.
const kindKernel = "kernel"

// Entry points and buses, as linux.Kernel and the image record them.
const (
	EntryPVH      = pack.KernelEntryPVH
	BusVirtioMMIO = pack.BusVirtioMMIO
)

// Kernel is a built kernel: what kernel.json in its folder says.
type Kernel struct {
	// Key is the cache key: recipe, source, compiler and fragment.
	Key string `json:"key"`
	// Release is `uname -r` in the guest, e.g. 6.1.192-unikfile.
	Release string `json:"release"`
	// Source is the package it was built from ("linux-source-6.1 6.1.192-3").
	Source   string   `json:"source"`
	Features []string `json:"features"`
	// ConfigDigest is the sha256 of the fragment (ConfigDigest).
	ConfigDigest string `json:"config_digest"`
	Compiler     string `json:"compiler"`
	// File is the kernel image in Dir: FileVMLinux (an ELF with a PVH entry
	// point, booted as is) or FileBzImage (for firmware and boot loaders).
	File   string `json:"file"`
	Digest string `json:"digest"` // sha256 of File
	Size   int64  `json:"size"`
	// Entry is EntryPVH for a vmlinux, "" for a bzImage; Bus is
	// BusVirtioMMIO when the kernel has no PCI.
	Entry string `json:"entry,omitempty"`
	Bus   string `json:"bus,omitempty"`
	// BuildSeconds is how long the make took; Cold says the object tree
	// was empty.
	BuildSeconds float64 `json:"build_seconds"`
	Cold         bool    `json:"cold"`
	// Dir is the kernel's folder (not stored).
	Dir string `json:"-"`
}

// Files of a built kernel's folder.
const (
	FileVMLinux = "vmlinux"
	FileBzImage = "bzImage"
	FileConfig  = "config"
	FileInfo    = "kernel.json"
)

// Path is the kernel image's path.
func (k *Kernel) Path() string { return filepath.Join(k.Dir, k.File) }

// Name is how messages name the kernel: its release, features and key.
func (k *Kernel) Name() string {
	return fmt.Sprintf("%s (%s) %s", k.Release, strings.Join(k.Features, ","), short(k.Key))
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// Builder builds kernels under Root (Dir's result): the extracted sources
// in Root/src, one object tree per source version in Root/trees (reused by
// every build, so a changed configuration recompiles only what it
// changes), and the kernels in Root/objects/kernel/<key>.
type Builder struct {
	Root string
	// Jobs is make's -j; 0 means the number of CPUs.
	Jobs int
	// Say receives progress lines; nil discards them.
	Say func(string)
	// Environ is the environment make runs in (KBUILD_*, KCONFIG_*, MAKE*,
	// ARCH and CROSS_COMPILE are replaced); nil means os.Environ().
	Environ []string
}

func (b *Builder) say(format string, args ...any) {
	if b.Say != nil {
		b.Say(fmt.Sprintf(format, args...))
	}
}

// Plan is what Build would do for some needs.
type Plan struct {
	Needs    Needs
	Fragment string
	Source   *Source // nil: no source extracted yet (Build fetches it)
	Compiler string
	Key      string // "" when Source is nil
}

// Plan computes the key of the kernel for n without building or
// downloading anything.
func (b *Builder) Plan(ctx context.Context, n Needs) (*Plan, error) {
	frag, err := Fragment(n)
	if err != nil {
		return nil, err
	}
	p := &Plan{Needs: n, Fragment: frag}
	if p.Source, err = LatestSource(b.Root); err != nil {
		return nil, err
	}
	if p.Source == nil {
		return p, nil
	}
	if p.Compiler, err = compilerIdentity(ctx, b.Root); err != nil {
		return nil, err
	}
	p.Key = kernelKey(frag, n, p.Source, p.Compiler)
	return p, nil
}

// Lookup returns the kernel for n when it is built.
func (b *Builder) Lookup(ctx context.Context, n Needs) (*Kernel, error) {
	p, err := b.Plan(ctx, n)
	if err != nil || p.Key == "" {
		return nil, err
	}
	return b.lookup(p.Key)
}

func (b *Builder) lookup(key string) (*Kernel, error) {
	store, err := cache.Open(b.Root)
	if err != nil {
		return nil, err
	}
	dir, ok := store.Lookup(kindKernel, key)
	if !ok {
		return nil, nil
	}
	return ReadKernel(dir)
}

// Build returns the kernel for n, building it when it is not in Root:
// the source is downloaded and extracted when none is (FetchSource), the
// configuration is allnoconfig plus Fragment(n), checked against what
// was asked, and `make` runs niced, with -j Jobs, in the source version's
// object tree, which one build at a time uses (others wait, and say so).
// Cancelling ctx stops make's whole process group; nothing is recorded
// then. The second result says the kernel was already built.
func (b *Builder) Build(ctx context.Context, n Needs) (*Kernel, bool, error) {
	store, err := cache.Open(b.Root)
	if err != nil {
		return nil, false, err
	}
	// The build holds the folder's GC lock shared from its choice of the
	// source to its kernel's making: a prune (Prune) waits for it, and it
	// waits for a prune, so neither the source, the tree nor the kernel
	// it found goes while it uses them.
	release, err := store.Hold(ctx)
	if err != nil {
		return nil, false, err
	}
	defer release()
	p, err := b.Plan(ctx, n)
	if err != nil {
		return nil, false, err
	}
	if p.Key != "" {
		if k, err := b.lookup(p.Key); err != nil || k != nil {
			return k, k != nil, err
		}
	}
	if err := CheckTools(); err != nil {
		return nil, false, err
	}
	if p.Source == nil {
		if p.Source, err = FetchSource(ctx, b.Root, b.Say); err != nil {
			return nil, false, err
		}
		if p.Compiler, err = compilerIdentity(ctx, b.Root); err != nil {
			return nil, false, err
		}
		p.Key = kernelKey(p.Fragment, n, p.Source, p.Compiler)
	}
	tree := treeDir(b.Root, p.Source, n)
	unlock, err := lockFile(ctx, tree+".lock", func() {
		b.say("waiting for another kernel build in %s to finish", tree)
	})
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	dir, hit, err := store.Fill(ctx, kindKernel, p.Key, func(ctx context.Context, out string) error {
		return b.make(ctx, p, tree, out)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("%w\n(the kernel for %s did not build from %s with %s: a configuration unikfile asks for or a toolchain this source does not take; set linux { kernel = \"/path/to/vmlinuz\" } to boot another kernel meanwhile)", err, n, p.Source.Package(), p.Compiler)
	}
	k, err := ReadKernel(dir)
	return k, hit, err
}

// ReadKernel reads a built kernel's folder.
func ReadKernel(dir string) (*Kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileInfo))
	if err != nil {
		return nil, err
	}
	var k Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileInfo), err)
	}
	k.Dir = dir
	return &k, nil
}

// List returns the kernels built under root. Listing is not a use: a
// kernel only listed still ages for Prune's OlderThan.
func List(root string) ([]*Kernel, error) {
	if _, err := os.Stat(filepath.Join(root, "objects", kindKernel)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	store, err := cache.Open(root)
	if err != nil {
		return nil, err
	}
	keys, err := store.Entries(kindKernel)
	if err != nil {
		return nil, err
	}
	var out []*Kernel
	for _, key := range keys {
		dir, _ := store.Verify(kindKernel, key)
		if k, err := ReadKernel(dir); err == nil {
			out = append(out, k)
		}
	}
	return out, nil
}

// treeDir is the object tree kernels for n are compiled in: one per
// source version and machine family. Kernels of one family (microVMs:
// virtio-mmio and PVH; PCs: PCI, a bzImage, perhaps an EFI stub) differ
// in a few options, which recompile a few files; switching between
// families would recompile nearly everything, so each keeps its tree.
func treeDir(root string, src *Source, n Needs) string {
	family := "microvm"
	if !n.Has("pvh") {
		family = "pc"
	}
	return filepath.Join(root, "trees", src.Version, family)
}

// kernelKey digests everything a built kernel depends on.
func kernelKey(fragment string, n Needs, src *Source, compiler string) string {
	h := sha256.New()
	r := recipe
	if n.Has("pvh") {
		r += " " + pvhRecipe
	}
	fmt.Fprintf(h, "recipe %s\nsource %s\ncompiler %s\nfragment %s\n", r, src.Package(), compiler, fragment)
	return hex.EncodeToString(h.Sum(nil))
}

// compilerIdentity is the first line of `gcc --version` and of `ld
// --version`: a new compiler or linker builds kernels again. The answer is
// kept in root's facts while both binaries keep their metadata, so that
// every `up` of an app with a built kernel does not start them again.
func compilerIdentity(ctx context.Context, root string) (string, error) {
	tools := []string{"gcc", "ld"}
	var files []string
	for _, tool := range tools {
		if p, err := exec.LookPath(tool); err == nil {
			files = append(files, p)
			if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
				files = append(files, real)
			}
		}
	}
	q := "kbuild compiler: gcc --version; ld --version\nPATH=" + os.Getenv("PATH")
	return cache.FactsIn(filepath.Join(root, "facts")).Get(q, files, func() (string, error) {
		var ids []string
		for _, tool := range tools {
			res, err := run.Run(ctx, run.Cmd{Path: tool, Args: []string{"--version"}, Hint: toolsHint})
			if err != nil {
				return "", err
			}
			first, _, _ := strings.Cut(string(res.Stdout), "\n")
			ids = append(ids, strings.TrimSpace(first))
		}
		return strings.Join(ids, "; "), nil
	})
}

// make configures and compiles the kernel of p in tree and writes the
// kernel's folder out.
func (b *Builder) make(ctx context.Context, p *Plan, tree, out string) error {
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	fragPath := filepath.Join(tree, "unikfile.fragment")
	if err := os.WriteFile(fragPath, []byte(p.Fragment), 0o644); err != nil {
		return err
	}
	if err := b.configure(ctx, p.Source, tree, fragPath); err != nil {
		return err
	}
	env := b.makeEnv()
	common := []string{"-C", p.Source.Dir, "O=" + tree, "ARCH=x86_64"}
	config, err := os.ReadFile(filepath.Join(tree, ".config"))
	if err != nil {
		return err
	}
	if missing := Missing(p.Fragment, string(config)); len(missing) > 0 {
		return fmt.Errorf("Kconfig of %s dropped %s (their dependencies are off): unikfile's feature table asks for what this source cannot give; report it", p.Source.Package(), strings.Join(missing, ", "))
	}
	target := FileBzImage
	if p.Needs.Has("pvh") {
		target = FileVMLinux
	}
	_, statErr := os.Stat(filepath.Join(tree, "vmlinux"))
	cold := statErr != nil
	estimate := readSteps(tree)
	jobs := b.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	if cold {
		b.say("compiling %s for %s: a first build takes minutes (%d jobs, niced)", p.Source.Package(), p.Needs, jobs)
	} else {
		b.say("compiling %s for %s in the existing tree (only what the configuration changes)", p.Source.Package(), p.Needs)
	}
	prog := newProgress(b.Say, cold, estimate)
	start := time.Now()
	args := append([]string{"-n", "10", "make"}, common...)
	args = append(args, "-j"+strconv.Itoa(jobs))
	if p.Needs.Has("pvh") {
		args = append(args, pvhMakeVars...)
	}
	args = append(args, target)
	_, err = run.Run(ctx, run.Cmd{Path: "nice", Args: args, Env: env, Stdout: prog, Hint: toolsHint})
	prog.flush()
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	took := time.Since(start)
	if cold {
		writeSteps(tree, prog.steps)
	}
	b.say("compiled in %s (%d steps)", took.Round(time.Second), prog.steps)

	k := &Kernel{
		Key: p.Key, Source: p.Source.Package(), Features: p.Needs.Features,
		ConfigDigest: digestOf(p.Fragment), Compiler: p.Compiler, File: target,
		BuildSeconds: took.Seconds(), Cold: cold,
	}
	if target == FileVMLinux {
		k.Entry = EntryPVH
		// The symbol table is for debuggers and the alignment fill is
		// nothing; the loader needs the segments and the PVH note.
		if err := compactVMLinux(filepath.Join(tree, "vmlinux"), filepath.Join(out, FileVMLinux)); err != nil {
			return fmt.Errorf("compact vmlinux: %w", err)
		}
	} else if err := copyFile(filepath.Join(tree, "arch", "x86", "boot", "bzImage"), filepath.Join(out, FileBzImage)); err != nil {
		return err
	}
	if p.Needs.Has("virtio-mmio") && !p.Needs.Has("virtio-pci") {
		k.Bus = BusVirtioMMIO
	}
	rel, err := os.ReadFile(filepath.Join(tree, "include", "config", "kernel.release"))
	if err != nil {
		return err
	}
	k.Release = strings.TrimSpace(string(rel))
	if err := os.WriteFile(filepath.Join(out, FileConfig), config, 0o644); err != nil {
		return err
	}
	if k.Digest, k.Size, err = fileDigest(filepath.Join(out, k.File)); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(k, "", "  ")
	return os.WriteFile(filepath.Join(out, FileInfo), append(js, '\n'), 0o644)
}

// pvhMakeVars are make variables of the builds of PVH kernels.
//
// mm/page_alloc.c is compiled with -O2: with -Os (the rest of the
// kernel) GCC writes the poison of every page the kernel frees while
// booting (free_reserved_area: the initramfs, the init sections, the
// gaps after .text and .rodata, some 13 MiB) as `rep stosb`, one byte
// per iteration, which TCG emulates one iteration at a time; on the init
// sections, whose code TCG has translated, each byte store also goes
// through its self-modifying-code check. That was 0.25-0.3 s of a 1.4 s
// boot under TCG; -O2 makes it `rep stosq`, eight bytes at a time. A
// command-line variable reaches every sub-make, and kbuild recompiles
// only the object whose command line changed. (PC kernels would gain the
// same; they keep recipe kbuild/1 for now, see pvhRecipe.)
var pvhMakeVars = []string{"CFLAGS_page_alloc.o=-O2"}

// configure writes tree/.config: allnoconfig with the fragment's options
// forced on.
func (b *Builder) configure(ctx context.Context, src *Source, tree, fragPath string) error {
	args := []string{"-C", src.Dir, "O=" + tree, "ARCH=x86_64", "-s", "KCONFIG_ALLCONFIG=" + fragPath, "allnoconfig"}
	if _, err := run.Run(ctx, run.Cmd{Path: "make", Args: args, Env: b.makeEnv(), Hint: toolsHint}); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// makeEnv is the environment of make: the caller's, without what would
// change the kernel build behind the key's back, plus fixed build
// stamps (the same source and configuration give the same kernel).
func (b *Builder) makeEnv() []string {
	environ := b.Environ
	if environ == nil {
		environ = os.Environ()
	}
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "KBUILD_"), strings.HasPrefix(name, "KCONFIG_"), strings.HasPrefix(name, "MAKE"),
			name == "MFLAGS", name == "ARCH", name == "CROSS_COMPILE", name == "LLVM", name == "INSTALL_PATH":
		default:
			env = append(env, kv)
		}
	}
	return append(env,
		"KBUILD_BUILD_TIMESTAMP=1970-01-01",
		"KBUILD_BUILD_USER=unikfile",
		"KBUILD_BUILD_HOST=unikfile",
		"KBUILD_BUILD_VERSION=1",
	)
}

// The step count of the tree's last cold build, for a cold build's
// percentage.
const stepsFile = ".unikfile-steps"

// defaultColdSteps is about how many steps (CC, LD, AR, ... lines) a cold
// build of a minimal kernel prints, measured on linux-source-6.1.
const defaultColdSteps = 1600

func readSteps(tree string) int {
	b, err := os.ReadFile(filepath.Join(tree, stepsFile))
	if err != nil {
		return defaultColdSteps
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return defaultColdSteps
	}
	return n
}

func writeSteps(tree string, n int) {
	_ = os.WriteFile(filepath.Join(tree, stepsFile), []byte(strconv.Itoa(n)+"\n"), 0o644)
}

func digestOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func fileDigest(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

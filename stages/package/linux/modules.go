package linux

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/cache"
)

// RequiredModules are the drivers every image needs when the kernel has
// them as modules: QEMU's virtio NIC and disk, and virtio over PCI.
func RequiredModules() []string { return []string{"virtio_pci", "virtio_net", "virtio_blk"} }

// OptionalModules are included when the kernel has them as modules, and
// their absence is no error: the clouds' NIC drivers (AWS ENA, GCP gVNIC,
// vSphere vmxnet3), and the ACPI power button with evdev, through which the
// init hears a stop request (QEMU's system_powerdown, a cloud's stop).
func OptionalModules() []string { return []string{"ena", "gve", "vmxnet3", "button", "evdev"} }

// moduleIndex is what a kernel's module tree offers.
type moduleIndex struct {
	dir        string
	byName     map[string]string // module name ('_' form) -> path relative to dir
	compressed map[string]string // module name -> compressed file, which the guest cannot load
	builtin    map[string]bool
}

// moduleName is the kernel's name for a module file or a name the user
// wrote: base name without .ko, with '-' as '_'.
func moduleName(s string) string {
	s = path.Base(filepath.ToSlash(s))
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(s, ext) {
			s = strings.TrimSuffix(s, ext)
			break
		}
	}
	return strings.ReplaceAll(s, "-", "_")
}

func loadModuleIndex(dir string) (*moduleIndex, error) {
	ix := &moduleIndex{dir: dir, byName: map[string]string{}, compressed: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		name := moduleName(rel)
		switch {
		case strings.HasSuffix(rel, ".ko"):
			if old, ok := ix.byName[name]; !ok || rel < old {
				ix.byName[name] = rel
			}
		case strings.HasSuffix(rel, ".ko.xz"), strings.HasSuffix(rel, ".ko.zst"), strings.HasSuffix(rel, ".ko.gz"):
			ix.compressed[name] = rel
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read kernel modules in %s: %w", dir, err)
	}
	f, err := os.Open(filepath.Join(dir, "modules.builtin"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if f != nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				ix.builtin[moduleName(line)] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name(), err)
		}
	}
	return ix, nil
}

// available reports whether the kernel has the module, as a file or built in.
func (ix *moduleIndex) available(name string) bool {
	n := moduleName(name)
	_, ok := ix.byName[n]
	return ok || ix.builtin[n]
}

// depends reads the depends= list of a module's .modinfo section.
func (ix *moduleIndex) depends(rel string) ([]string, error) {
	f, err := os.Open(filepath.Join(ix.dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", rel, err)
	}
	defer f.Close()
	deps, err := modinfoDepends(f)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", rel, err)
	}
	return deps, nil
}

// maxModinfo bounds the .modinfo section read (a real one is a few KiB).
const maxModinfo = 1 << 20

// modinfoDepends reads the depends= list of the .modinfo section of the
// kernel module (an ELF relocatable file) in r: NUL-separated key=value
// strings, depends a comma-separated list of module names.
func modinfoDepends(r io.ReaderAt) ([]string, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not a kernel module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	if sec.Type == elf.SHT_NOBITS || sec.Size > maxModinfo {
		return nil, fmt.Errorf(".modinfo section of %d bytes", sec.Size)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	var deps []string
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, "depends="); ok {
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, moduleName(d))
				}
			}
		}
	}
	sort.Strings(deps)
	return deps, nil
}

// closure returns the module files for want and everything they depend
// on, each after its dependencies. Wanted modules keep the caller's order
// (which one loads first); dependencies are visited in name order.
func (ix *moduleIndex) closure(want []string) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("kernel modules depend on each other in a cycle: %s", strings.Join(append(chain, name), " -> "))
		}
		rel, ok := ix.byName[name]
		if !ok {
			if ix.builtin[name] {
				state[name] = done
				return nil
			}
			msg := fmt.Sprintf("kernel module %s not found in %s (neither a .ko file nor in modules.builtin)", name, ix.dir)
			if len(chain) > 0 {
				msg += "; needed by " + strings.Join(chain, " -> ")
			}
			if c, ok := ix.compressed[name]; ok {
				msg += fmt.Sprintf("; %s is compressed, and the image needs uncompressed modules (Debian 12's are)", c)
			}
			return errors.New(msg)
		}
		state[name] = visiting
		deps, err := ix.depends(rel)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, rel)
		return nil
	}
	for _, w := range want {
		if err := visit(moduleName(w), nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ModuleClosure returns the module files (paths relative to modulesDir)
// needed to load the wanted modules, in load order: every module after the
// modules it depends on (read from each module's .modinfo, since kernel
// packages need not ship modules.dep). Names may use '-' or '_'. A wanted
// module built into the kernel (modules.builtin) needs no file; one the
// kernel lacks entirely is an error naming it.
func ModuleClosure(modulesDir string, want []string) ([]string, error) {
	ix, err := loadModuleIndex(modulesDir)
	if err != nil {
		return nil, err
	}
	return ix.closure(want)
}

// imageModules chooses the modules for an image: the required ones and the
// optional ones this kernel has.
func imageModules(modulesDir string) ([]string, error) {
	ix, err := loadModuleIndex(modulesDir)
	if err != nil {
		return nil, err
	}
	want := RequiredModules()
	for _, m := range OptionalModules() {
		if ix.available(m) {
			want = append(want, m)
		}
	}
	rels, err := ix.closure(want)
	if err != nil {
		return nil, fmt.Errorf("%w; the image needs %s as modules or built into the kernel", err, strings.Join(RequiredModules(), ", "))
	}
	return rels, nil
}

// ModulesDigest digests the module files an image of kernel k gets (their
// paths and contents), for cache keys: k.Digest covers the vmlinuz only.
func ModulesDigest(k *Kernel) (string, error) {
	return ModulesDigestWith(k, cache.FileDigest)
}

// ModulesDigestWith is ModulesDigest digesting each module with digest. It
// records the module files in k.Modules, for Build.
func ModulesDigestWith(k *Kernel, digest Digester) (string, error) {
	if k.ModulesDir == "" {
		return "no modules", nil
	}
	rels, err := imageModules(k.ModulesDir)
	if err != nil {
		return "", err
	}
	k.Modules = rels
	h := sha256.New()
	for _, rel := range rels {
		d, err := digest(filepath.Join(k.ModulesDir, rel))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", rel, d)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

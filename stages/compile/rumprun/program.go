package rumprun

import (
	"debug/elf"
	"fmt"
	"strings"
)

// RecipeSection is the note the toolchain's compiler drivers add to every
// program they link: where the toolchain is and how rumprun-bake must link
// the program (rumprun_tuple, rumprun_tooldir, rumprun_backingcc,
// rumprun_cflags).
const RecipeSection = ".note.rumprun.bakerecipe"

// Recipe reads a program's bake recipe: the "rumprun_KEY: value" strings
// of its RecipeSection, by KEY.
func Recipe(file string) (map[string]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF file (%v)", file, err)
	}
	defer f.Close()
	s := f.Section(RecipeSection)
	if s == nil {
		return nil, fmt.Errorf("%s has no %s section", file, RecipeSection)
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", file, RecipeSection, err)
	}
	out := map[string]string{}
	for _, str := range strings.Split(string(data), "\x00") {
		k, v, ok := strings.Cut(str, ": ")
		if k, isKey := strings.CutPrefix(k, "rumprun_"); ok && isKey {
			out[k] = v
		}
	}
	return out, nil
}

// CheckProgram says why file (name, its path in the bundle) is not a
// program the Rumprun toolchain linked: an x86-64 relocatable object with
// a bake recipe, which is what x86_64-rumprun-netbsd-gcc writes where a
// host compiler writes an executable.
func CheckProgram(file, name string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s is not an ELF file (%v); on base rump the program must be linked by the Rumprun toolchain's %s-gcc or -g++", name, err, Tuple)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_REL || f.Section(RecipeSection) == nil {
		return fmt.Errorf("%s is an ELF %v for %v without Rumprun's bake recipe, not a program linked by the Rumprun toolchain; on base rump, build with %s-gcc or -g++ (make and CMake get them as CC and CXX: do not override them in the Makefile)", name, f.Type, f.Machine, Tuple)
	}
	r, err := Recipe(file)
	if err != nil {
		return err
	}
	if r["tuple"] != Tuple {
		return fmt.Errorf("%s was linked for %q; unikfile bakes %s programs", name, r["tuple"], Tuple)
	}
	return nil
}

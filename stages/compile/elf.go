package compile

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"path"
	"path/filepath"

	"github.com/unikfile/unikfile/lang"
)

// elfLang packs a program the user brings: main names an x86-64 ELF
// executable inside the source, which is copied whole to /app (extra
// files, bundled libraries) and completed with its shared-library
// closure from the host.
type elfLang struct{}

// Toolchain is the state of the host's libraries, which the closure
// copies.
func (elfLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	return "elf; libs " + hostLibsDigest(), nil
}

func (elfLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

func (elfLang) Program(app *lang.App) string {
	return path.Join(AppDir, path.Clean("/"+filepath.ToSlash(app.Main)))
}

func (l elfLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	if app.Main == "" || app.Main == "." {
		return Launch{}, fmt.Errorf("app %s: language \"elf\" needs main = \"PATH\", the program inside the source (e.g. main = \"bin/server\")", app.Name)
	}
	rel, err := mainFile(app)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := checkExecutable(filepath.Join(app.Source, filepath.FromSlash(rel))); err != nil {
		return Launch{}, fmt.Errorf("app %s: main = %q: %w", app.Name, app.Main, err)
	}
	if err := copySource(app.Source, rootfs); err != nil {
		return Launch{}, err
	}
	env, err := closure(app, rootfs, AppDir)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return Launch{Env: env, Dir: AppDir}, nil
}

// checkExecutable says why file is not an x86-64 ELF executable.
func checkExecutable(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s is not an ELF program (%v); for scripts choose the language of their interpreter", file, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is a %v %v ELF file; only x86-64 (amd64) programs can run on this base", file, f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is an ELF %v, not a program", file, f.Type)
	}
	return nil
}

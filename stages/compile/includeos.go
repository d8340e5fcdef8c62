package compile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/includeos"
)

// includeosLang builds C and C++ services for the includeos base: CMake
// with the SDK's toolchain file links the service with IncludeOS into one
// 64-bit multiboot ELF, installed as ServiceProgram. There is no
// shared-library closure and no runtime environment: the ELF is the whole
// guest.
type includeosLang struct{}

// IncludeOSProgram is where an includeos bundle holds the service's ELF.
const IncludeOSProgram = AppDir + "/service.elf"

func (includeosLang) sdk(app *lang.App) (*includeos.SDK, error) {
	s, err := includeos.Resolve(includeos.SettingsOf(app).SDK, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return s, nil
}

// Toolchain is the SDK's folder and the identity of the programs it
// builds with; the SDK's files are digested as an extra input.
func (l includeosLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	s, err := l.sdk(app)
	if err != nil {
		return "", err
	}
	id, err := s.Identity(ctx)
	if err != nil {
		return "", fmt.Errorf("app %s: %w", app.Name, err)
	}
	return id, nil
}

// ToolchainScope: the identity depends on the SDK folder only.
func (l includeosLang) ToolchainScope(app *lang.App) (string, bool) {
	s, err := l.sdk(app)
	if err != nil {
		return "", false
	}
	return s.Dir, true
}

// ExtraInputs is the SDK folder: its libraries and headers are linked into
// the service, so they are part of the compile key.
func (l includeosLang) ExtraInputs(app *lang.App) ([]string, error) {
	s, err := l.sdk(app)
	if err != nil {
		return nil, err
	}
	return []string{s.Dir}, nil
}

func (includeosLang) Program(*lang.App) string { return IncludeOSProgram }

func (l includeosLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	s, err := l.sdk(app)
	if err != nil {
		return Launch{}, err
	}
	work, err := os.MkdirTemp("", "unikfile-includeos-")
	if err != nil {
		return Launch{}, err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := copySourceTo(app.Source, src); err != nil {
		return Launch{}, err
	}
	elfFile, err := includeos.Build{
		SDK: s, Source: src, Dir: filepath.Join(work, "build"), Main: app.Main, Log: log, TrimPrefix: work,
	}.Run(ctx)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := checkExecutable(elfFile); err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := copyFile(elfFile, filepath.Join(rootfs, filepath.FromSlash(IncludeOSProgram)), 0o755); err != nil {
		return Launch{}, err
	}
	return Launch{}, nil
}

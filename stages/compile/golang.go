package compile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

// goHint says how to get the Go toolchain.
const goHint = "install Go (https://go.dev/doc/install, or apt-get install golang) and put it in PATH"

// goLang builds Go apps as reproducible linux/amd64 binaries, linked as
// the app's base wants them (static for linux: CGO_ENABLED=0; an
// externally linked PIE for OSv): -trimpath, no VCS stamp and no build
// id, so the same source and toolchain give the same bytes.
type goLang struct{}

// buildEnv is the environment of every go command for app: a
// linux/amd64 build for its base that reads nothing outside the module
// (no go.work).
func buildEnv(app *lang.App) []string {
	return run.Environ(GoBuildEnvFor(app)...)
}

// cgo reports whether app's Go build links with the C toolchain.
func cgo(app *lang.App) bool {
	for _, kv := range GoBuildEnvFor(app) {
		if kv == "CGO_ENABLED=1" {
			return true
		}
	}
	return false
}

// Toolchain is what `go env` says, in the app's folder and the build's
// environment, about everything that changes the compiler's output: the
// version, GOFLAGS, GOEXPERIMENT, GOAMD64 and the rest, whether they come
// from the environment or from `go env -w`.
func (goLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	res, err := run.Run(ctx, run.Cmd{
		Path: "go",
		Args: []string{"env", "-json", "GOVERSION", "GOROOT", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GODEBUG", "GOFIPS140", "GOTOOLCHAIN"},
		Dir:  app.Source,
		Env:  buildEnv(app),
		Hint: goHint,
	})
	if err != nil {
		return "", err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, res.Stdout); err != nil {
		return "", fmt.Errorf("go env -json: %w", err)
	}
	id := compact.String()
	if cgo(app) {
		// External linking runs the C compiler (CC, default gcc) and the
		// host's C library and start files go into the program.
		cc, hint := cLang{}.cc()
		t, err := toolIdentity(ctx, cc, hint+"; Go programs for this base are linked with it", "--version")
		if err != nil {
			return "", err
		}
		id += "; " + t
		for _, v := range []string{"CGO_CFLAGS", "CGO_LDFLAGS"} {
			id += fmt.Sprintf("; %s=%q", v, os.Getenv(v))
		}
	}
	return id, nil
}

// ToolchainScope: with GOWORK=off, what `go env` answers in the app's
// folder depends, besides the environment, on the go and toolchain lines
// of the go.mod there (GOTOOLCHAIN may switch toolchains on them). Without
// a go.mod in the source folder the scope is unknown.
func (goLang) ToolchainScope(app *lang.App) (string, bool) {
	data, err := os.ReadFile(filepath.Join(app.Source, "go.mod"))
	if err != nil {
		return "", false
	}
	mf, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return "", false
	}
	scope := "go.mod"
	if t, err := TargetFor(app.Base); err == nil {
		scope = "target " + t.Name + "; " + scope
	}
	if mf.Go != nil {
		scope += " go " + mf.Go.Version
	}
	if mf.Toolchain != nil {
		scope += " toolchain " + mf.Toolchain.Name
	}
	return scope, true
}

// ToolchainInputs: without cgo, `go env` answers from the go binary, Go's
// settings file and the environment (and the go.mod lines of the scope).
func (goLang) ToolchainInputs(app *lang.App) (files, environ []string, ok bool) {
	if cgo(app) {
		return nil, nil, false // the C compiler's identity is part of it
	}
	env := buildEnv(app)
	return GoToolchainFiles(env), env, true
}

// ExtraInputs are the folders of go.mod's local replace directives.
func (goLang) ExtraInputs(app *lang.App) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(app.Source, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // go build will say what is wrong
	}
	if err != nil {
		return nil, err
	}
	mf, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(app.Source, "go.mod"), err)
	}
	var dirs []string
	for _, r := range mf.Replace {
		if modfile.IsDirectoryPath(r.New.Path) {
			dir := r.New.Path
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(app.Source, dir)
			}
			dirs = append(dirs, filepath.Clean(dir))
		}
	}
	return dirs, nil
}

// GoBuildArgs are the arguments of the go command that compiles app's main
// package into out: every executor uses them, so that the same source and
// toolchain give the same bytes wherever they are compiled.
func GoBuildArgs(app *lang.App, out string) []string {
	t, err := TargetFor(app.Base)
	if err != nil {
		t = targets["linux"] // Compile has refused the base already
	}
	args := []string{"build", "-trimpath", "-buildvcs=false"}
	args = append(args, t.GoFlags...)
	return append(args, "-ldflags="+t.GoLDFlags, "-o", out, goMain(app))
}

// GoBuildEnvFor is the environment the go command runs with for app
// (besides PATH, HOME and the caches): a linux/amd64 build for the app's
// base that reads nothing outside the module.
func GoBuildEnvFor(app *lang.App) []string {
	t, err := TargetFor(app.Base)
	if err != nil {
		t = targets["linux"]
	}
	return t.GoEnv
}

// GoBuildEnv is GoBuildEnvFor's answer for the linux base: a static
// build.
var GoBuildEnv = targets["linux"].GoEnv

// goMain is the package to build, as a relative import path.
func goMain(app *lang.App) string {
	main := app.Main
	if main == "" {
		main = "."
	}
	if !strings.HasPrefix(main, "./") && main != "." && !strings.HasPrefix(main, "../") {
		main = "./" + main
	}
	return main
}

// Program names the binary after its main package's folder ("./cmd/api"
// gives /app/api) or, for ".", "/app/main".
func (goLang) Program(app *lang.App) string {
	name := path.Base(goMain(app))
	if name == "." || name == "/" || name == ".." {
		name = "main"
	}
	return "/app/" + name
}

func (g goLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	out := filepath.Join(rootfs, filepath.FromSlash(g.Program(app)))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Launch{}, err
	}
	_, err := run.Run(ctx, run.Cmd{
		Path:   "go",
		Args:   GoBuildArgs(app, out),
		Dir:    app.Source,
		Env:    buildEnv(app),
		Stderr: log,
		Hint:   goHint,
	})
	if err != nil {
		return Launch{}, fmt.Errorf("go build in %s failed:\n%s", app.Source, compilerOutput(err))
	}
	return Launch{}, nil
}

// compilerOutput is the compiler's own message from a failed run.
func compilerOutput(err error) string {
	var re *run.Error
	if errors.As(err, &re) && re.Tail != "" {
		return re.Tail
	}
	return err.Error()
}

// GoModulePath is the module path declared by the go.mod in dir, for
// `unikfile init`; the error says what to do when there is none.
func GoModulePath(dir string) (string, error) {
	path := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no go.mod in %s: `unikfile init` scaffolds a Unikfile for a Go module (run `go mod init` first)", dir)
	}
	if err != nil {
		return "", err
	}
	mp := modfile.ModulePath(data)
	if mp == "" {
		return "", fmt.Errorf("%s declares no module path (a `module example.com/app` line); fix it, or run `go mod init`", path)
	}
	return mp, nil
}

// GoToolchainFiles are the files the go command answers `go env` from,
// besides the environment and the source's go.mod: the go binary found in
// environ's PATH (and what its link points at) and Go's settings file
// (GOENV, else `go env -w`'s file in the user's config folder).
func GoToolchainFiles(environ []string) []string {
	var out []string
	if p, err := lookPathIn("go", run.Getenv(environ, "PATH")); err == nil {
		out = append(out, p)
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			out = append(out, real)
		}
	}
	if p := run.Getenv(environ, "GOENV"); p != "" && p != "off" {
		out = append(out, p)
	} else if dir, err := os.UserConfigDir(); err == nil {
		out = append(out, filepath.Join(dir, "go", "env"))
	}
	return out
}

// lookPathIn finds an executable file in path (a PATH value).
func lookPathIn(file, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

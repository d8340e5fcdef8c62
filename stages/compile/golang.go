package compile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

// goHint says how to get the Go toolchain.
const goHint = "install Go (https://go.dev/doc/install, or apt-get install golang) and put it in PATH"

// goLang builds Go apps as static, reproducible linux/amd64 binaries:
// CGO_ENABLED=0, -trimpath, no VCS stamp and no build id, so the same source
// and toolchain give the same bytes.
type goLang struct{}

func (goLang) Toolchain(ctx context.Context) (string, error) {
	res, err := run.Run(ctx, run.Cmd{Path: "go", Args: []string{"env", "GOVERSION"}, Hint: goHint})
	if err != nil {
		return "", err
	}
	// GOFLAGS and GOEXPERIMENT change what the compiler produces.
	return strings.TrimSpace(string(res.Stdout)) + " GOFLAGS=" + os.Getenv("GOFLAGS") + " GOEXPERIMENT=" + os.Getenv("GOEXPERIMENT"), nil
}

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

func (g goLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) error {
	out := filepath.Join(rootfs, filepath.FromSlash(g.Program(app)))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	_, err := run.Run(ctx, run.Cmd{
		Path:   "go",
		Args:   []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, goMain(app)},
		Dir:    app.Source,
		Env:    run.Environ("CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"),
		Stderr: log,
		Hint:   goHint,
	})
	if err != nil {
		return fmt.Errorf("go build in %s failed:\n%s", app.Source, compilerOutput(err))
	}
	return nil
}

// compilerOutput is the compiler's own message from a failed run.
func compilerOutput(err error) string {
	var re *run.Error
	if errors.As(err, &re) && re.Tail != "" {
		return re.Tail
	}
	return err.Error()
}

package compile

import (
	"context"
	"fmt"
	"io"
	"os"
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

func (goLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (string, error) {
	main := app.Main
	if main == "" {
		main = "."
	}
	if !strings.HasPrefix(main, "./") && main != "." && !strings.HasPrefix(main, "../") {
		main = "./" + main
	}
	prog := "/app/" + app.Name
	out := filepath.Join(rootfs, filepath.FromSlash(prog))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	_, err := run.Run(ctx, run.Cmd{
		Path:   "go",
		Args:   []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, main},
		Dir:    app.Source,
		Env:    run.Environ("CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"),
		Stderr: log,
		Hint:   goHint,
	})
	if err != nil {
		return "", fmt.Errorf("compile %s (go build in %s): %w", app.Name, app.Source, err)
	}
	return prog, nil
}

package compile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

const (
	nodeHint = "install Node.js: apt-get install nodejs"
	npmHint  = "install npm: apt-get install npm"
)

// nodeLang packs the host's node (the binary found in PATH and its shared
// libraries) with the app's source in /app. With a package-lock.json,
// node_modules is installed with `npm ci --omit=dev` into the bundle (the
// source's own node_modules is then left out); without one, the source is
// copied as it is. The app runs as `node /app/MAIN`.
type nodeLang struct{}

func (nodeLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	id, err := toolIdentity(ctx, "node", nodeHint, "--version")
	if err != nil {
		return "", err
	}
	if hasLock(app) {
		npm, err := toolIdentity(ctx, "npm", npmHint, "--version")
		if err != nil {
			return "", err
		}
		id += "; " + npm
	}
	return id, nil
}

func hasLock(app *lang.App) bool {
	_, err := os.Stat(filepath.Join(app.Source, "package-lock.json"))
	return err == nil
}

func (nodeLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

// nodeMain is main, else package.json's "main", else a usual name.
func nodeMain(app *lang.App) (string, error) {
	defs := []string{"index.js", "server.js", "main.js", "app.js", "index.mjs", "server.mjs"}
	if b, err := os.ReadFile(filepath.Join(app.Source, "package.json")); err == nil {
		var pkg struct {
			Main string `json:"main"`
		}
		if json.Unmarshal(b, &pkg) == nil && pkg.Main != "" {
			defs = append([]string{pkg.Main}, defs...)
		}
	}
	return mainFile(app, defs...)
}

func (nodeLang) Program(app *lang.App) string {
	m, err := nodeMain(app)
	if err != nil {
		m = "index.js"
	}
	return path.Join(AppDir, m)
}

func (nodeLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	main, err := nodeMain(app)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	nodePath, err := run.Look("node", nodeHint)
	if err != nil {
		return Launch{}, err
	}
	node, err := filepath.EvalSymlinks(nodePath)
	if err != nil {
		return Launch{}, err
	}
	if err := copyFile(node, filepath.Join(rootfs, filepath.FromSlash(node)), 0o755); err != nil {
		return Launch{}, err
	}
	appDir := filepath.Join(rootfs, "app")
	if hasLock(app) {
		m, err := loadIgnore(app.Source)
		if err != nil {
			return Launch{}, err
		}
		if err := copyTree(app.Source, appDir, func(rel string, isDir bool) bool {
			return rel == "node_modules" || m.Match(rel, isDir)
		}); err != nil {
			return Launch{}, err
		}
		if _, err := run.Run(ctx, run.Cmd{
			Path:   "npm",
			Args:   []string{"ci", "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"},
			Dir:    appDir,
			Stdout: log, Stderr: log,
			Hint: npmHint,
		}); err != nil {
			if _, ok := err.(*run.NotFoundError); ok {
				return Launch{}, err
			}
			return Launch{}, fmt.Errorf("app %s: npm ci failed:\n%s", app.Name, compilerOutput(err))
		}
	} else if err := copySource(app.Source, rootfs); err != nil {
		return Launch{}, err
	}
	env, err := closure(app, rootfs, node, AppDir)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return Launch{Argv: []string{node, path.Join(AppDir, main)}, Env: env, Dir: AppDir}, nil
}

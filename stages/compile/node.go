package compile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
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

// NodeMain is the script to run, relative to the source.
func NodeMain(app *lang.App) (string, error) { return nodeMain(app) }

// HasLock reports whether app's source has a package-lock.json (then
// node_modules comes from npm ci, not from the source).
func HasLock(app *lang.App) bool { return hasLock(app) }

// NpmCIArgs install the production dependencies of a lock file.
var NpmCIArgs = []string{"ci", "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier"}

// NodeLaunch starts main (relative to /app) with the node binary at node.
func NodeLaunch(node, main string, env []string) Launch {
	return Launch{Argv: []string{node, path.Join(AppDir, main)}, Env: env, Dir: AppDir}
}

// nodeBuiltin matches the files of builtin modules that a node loads from
// the filesystem at start (Debian's node is built to load acorn,
// cjs-module-lexer and undici from /usr/share/nodejs, and aborts without
// them); their paths are compiled into node or libnode.
var nodeBuiltin = regexp.MustCompile(`/usr/share/nodejs/[A-Za-z0-9@._/-]+\.js`)

// PackNodeBuiltins finds the builtin module files that the node at node
// (a path in rootfs) and its packed libnode name, and copies them from
// from into rootfs. Call it after the closure.
func PackNodeBuiltins(rootfs string, from elfdeps.FS, node string) error {
	files := []string{filepath.Join(rootfs, filepath.FromSlash(node))}
	for _, pat := range []string{"lib/x86_64-linux-gnu/libnode.so*", "usr/lib/x86_64-linux-gnu/libnode.so*"} {
		m, _ := filepath.Glob(filepath.Join(rootfs, pat))
		files = append(files, m...)
	}
	seen := map[string]bool{}
	var want []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a link into the other folder, read through it
		}
		for _, m := range nodeBuiltin.FindAll(b, -1) {
			if p := string(m); !seen[p] {
				seen[p] = true
				if fi, err := from.Lstat(p); err == nil && !fi.IsDir() {
					want = append(want, p)
				}
			}
		}
	}
	sort.Strings(want)
	return elfdeps.Bring(rootfs, from, want)
}

// NodeRoots are the ELF roots of a Node.js bundle's closure.
func NodeRoots(node string) []string { return []string{node, AppDir} }

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
			Args:   NpmCIArgs,
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
	env, err := closure(app, rootfs, NodeRoots(node)...)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := PackNodeBuiltins(rootfs, elfdeps.Host, node); err != nil {
		return Launch{}, fmt.Errorf("app %s: node's builtin modules: %w", app.Name, err)
	}
	return NodeLaunch(node, main, env), nil
}

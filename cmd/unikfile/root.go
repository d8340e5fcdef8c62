package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/state"
)

// version is set at release time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// cli holds global flags and what commands share.
type cli struct {
	dir      string
	file     string
	vars     []string
	jobs     int
	cacheDir string
	stateDir string
	executor string
	stdout   io.Writer
	stderr   io.Writer
	// args are the command's arguments as given (build stamps are keyed
	// by them); nil in a cli that no command line made.
	args []string

	// keepGoing is set by build and up (--keep-going) for runGraph.
	keepGoing bool
	// digests is the stat cache of the run, saved after runGraph.
	digests *cache.StatCache
	// cache is the store a build opened (pipelineEnv), which runGraph
	// holds while it runs.
	cache *cache.Store
}

func newCLI() *cli { return &cli{stdout: os.Stdout, stderr: os.Stderr} }

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "unikfile",
		Short: "Build apps into unikernels and run them, from a declarative Unikfile",
		Long: `unikfile builds the apps a Unikfile declares into unikernels (a Linux kernel
plus an initramfs whose only program is the app), caches every stage, and
boots them on the Unikfile's targets (QEMU locally).

Exit status: 0 success; 1 something you can fix (a bad Unikfile, a missing
tool or kernel, a failed compile, an app that did not become ready); 2 an
internal error in unikfile; 130 interrupted. up --attach exits with the
app's own status.`,
		Example: `  unikfile init                 # write a Unikfile for the Go module here
  unikfile up                   # build what changed, boot it, print the URL
  unikfile ps                   # what runs
  unikfile logs -f hello        # follow an app's serial console
  unikfile down                 # stop this project's instances`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&c.dir, "dir", "C", ".", "project directory")
	pf.StringVar(&c.file, "file", "", "Unikfile path (default: DIR/Unikfile)")
	pf.StringArrayVar(&c.vars, "var", nil, "set a variable: --var name=value (repeatable; wins over UNIKFILE_VAR_name)")
	pf.IntVarP(&c.jobs, "jobs", "j", runtime.NumCPU(), "how many stages run at once")
	pf.StringVar(&c.cacheDir, "cache-dir", "", "cache directory (default: $UNIKFILE_CACHE_DIR or ~/.cache/unikfile)")
	pf.StringVar(&c.stateDir, "state-dir", "", "instance state directory (default: $UNIKFILE_STATE_DIR or ~/.local/state/unikfile)")
	pf.StringVar(&c.executor, "executor", "", "compile executor: local, buildkit or auto (default: the Unikfile's build block; buildkit when UNIKFILE_BUILDKIT_HOST is set)")
	root.AddCommand(
		c.initCommand(),
		c.validateCommand(),
		c.fmtCommand(),
		c.buildCommand(),
		c.graphCommand(),
		c.upCommand(),
		c.watchCommand(),
		c.psCommand(),
		c.logsCommand(),
		c.downCommand(),
		c.imagesCommand(),
		c.kernelCommand(),
		c.versionCommand(),
	)
	documentCommands(root)
	return root
}

// unikfileLocation is where the project's Unikfile is or would be: --file,
// or DIR/Unikfile. Symlinks are resolved, so that one project reached by
// two paths has one identity (its lock, its instances).
func (c *cli) unikfileLocation() (string, error) {
	if c.file != "" {
		abs, err := filepath.Abs(c.file)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", fmt.Errorf("--file %s: %w", c.file, err)
		}
		if fi.IsDir() {
			return "", fmt.Errorf("--file %s is a directory: pass the Unikfile itself, or the directory with -C", c.file)
		}
		// The folder is resolved as -C resolves it; the file keeps its name.
		dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, filepath.Base(abs)), nil
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("project directory %s: %w", c.dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("-C %s is not a directory", c.dir)
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return "", err
	}
	return filepath.Join(dir, lang.FileName), nil
}

// unikfilePath returns the Unikfile to load, which must exist.
func (c *cli) unikfilePath() (string, error) {
	path, err := c.unikfileLocation()
	if err != nil {
		return "", err
	}
	if c.file != "" {
		return path, nil
	}
	return lang.FindFile(filepath.Dir(path))
}

// parseVars reads the --var flags.
func (c *cli) parseVars() (map[string]string, error) {
	vars := map[string]string{}
	for _, v := range c.vars {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--var %q: want name=value", v)
		}
		vars[name] = value
	}
	return vars, nil
}

func (c *cli) cacheStore() (*cache.Store, error) {
	dir := c.cacheDir
	if dir == "" {
		dir = os.Getenv("UNIKFILE_CACHE_DIR")
	}
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no cache directory: set UNIKFILE_CACHE_DIR: %w", err)
		}
		dir = filepath.Join(base, "unikfile")
	}
	return cache.Open(dir)
}

func (c *cli) stateDirectory() (string, error) {
	dir := c.stateDir
	if dir == "" {
		dir = os.Getenv("UNIKFILE_STATE_DIR")
	}
	if dir == "" {
		if x := os.Getenv("XDG_STATE_HOME"); x != "" {
			dir = filepath.Join(x, "unikfile")
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("no state directory: set UNIKFILE_STATE_DIR: %w", err)
			}
			dir = filepath.Join(home, ".local", "state", "unikfile")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

func (c *cli) stateStore() (*state.Store, string, error) {
	dir, err := c.stateDirectory()
	if err != nil {
		return nil, "", err
	}
	s, err := state.Open(dir)
	return s, dir, err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// toolVersion identifies this unikfile build for cache keys: a release
// version, or for development builds the digest of the executable itself,
// so that a rebuilt unikfile never trusts outputs of an older one.
func toolVersion() string { return toolVersionFrom(nil) }

// toolVersionFrom is toolVersion with the executable digested through sc.
func toolVersionFrom(sc *cache.StatCache) string {
	if version != "dev" {
		return version
	}
	if exe, err := os.Executable(); err == nil {
		if d, err := sc.FileDigest(exe); err == nil {
			return "dev-" + d[:16]
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		h := sha256.Sum256([]byte(bi.String()))
		return "dev-" + hex.EncodeToString(h[:8])
	}
	return "dev"
}

package osv

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/cache"
	"github.com/unikfile/unikfile/internal/run"
	pack "github.com/unikfile/unikfile/stages/package"
)

// OSv checks nothing of the app's ports itself, so images of apps with
// ports carry a readiness helper (helper/ready.c): OSv starts it beside the app
// (Cmdline), it connects to each port inside the guest until the app
// accepts, and prints ReadyMarker.

//go:embed helper/ready.c
var readySource []byte

// Where the helper is in the image, and what it prints.
const (
	ReadyPath   = "/.unikfile/ready"
	ReadyMarker = "unikfile-osv: ready"
)

// readyID names the node that builds the helper.
const readyID = "build osv readiness helper"

const gccHint = "the osv base compiles its readiness helper (and Go programs) with the C compiler: apt-get install gcc (or set CC)"

// cc is the C compiler: $CC or gcc.
func cc() string {
	if v := os.Getenv("CC"); v != "" {
		return v
	}
	return "gcc"
}

// BuildReady compiles the helper into out: a stripped PIE, which OSv runs.
func BuildReady(ctx context.Context, out string) error {
	dir, err := os.MkdirTemp("", "unikfile-osv-ready-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "ready.c")
	if err := os.WriteFile(src, readySource, 0o644); err != nil {
		return err
	}
	if _, err := run.Run(ctx, run.Cmd{Path: cc(), Args: []string{"-O2", "-fPIE", "-pie", "-s", "-ffile-prefix-map=" + dir + "=.", "-o", out, src}, Dir: dir, Hint: gccHint}); err != nil {
		return fmt.Errorf("compile the osv readiness helper: %w", err)
	}
	return nil
}

// readyKey is the helper's cache key: its source and the compiler.
func readyKey(ctx context.Context) (string, error) {
	p, err := run.Look(cc(), gccHint)
	if err != nil {
		return "", err
	}
	res, err := run.Run(ctx, run.Cmd{Path: p, Args: []string{"--version"}, Hint: gccHint})
	if err != nil {
		return "", err
	}
	real, _ := filepath.EvalSymlinks(p)
	sum := sha256.Sum256(readySource)
	return (&cache.Key{}).Add("stage", "osv-ready").Add("source", hex.EncodeToString(sum[:])).
		Add("cc", p+" ("+real+") "+strings.TrimSpace(string(res.Stdout))).Sum(), nil
}

// buildReadyShared builds the helper once per source and compiler.
func buildReadyShared(ctx context.Context, env *pack.Env) (any, bool, error) {
	key, err := readyKey(ctx)
	if err != nil {
		return "", false, err
	}
	dir, hit, err := env.Cache.Fill(ctx, "init", key, func(ctx context.Context, dir string) error {
		return BuildReady(ctx, filepath.Join(dir, "ready"))
	})
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", readyID, err)
	}
	return filepath.Join(dir, "ready"), hit, nil
}

var errNoReady = errors.New("an app with ports needs the readiness helper (BuildReady)")

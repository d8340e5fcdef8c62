package guest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// source is this package and the init's source, so that a unikfile binary
// installed anywhere can build the init. Test files come along; go build
// ignores them.
//
//go:embed *.go init/*.go
var source embed.FS

// modulePath is the module the init is built in.
const modulePath = "github.com/unikfile/unikfile"

// goMod is the go.mod of the temporary module: no requirements, since the
// init depends on the standard library and this package only.
const goMod = "module " + modulePath + "\n\ngo 1.22\n"

// sourceFiles lists the embedded files, sorted.
func sourceFiles() ([]string, error) {
	var names []string
	err := fs.WalkDir(source, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}

// SourceDigest is the sha256 (hex) of the init's embedded source: file
// names and contents, in name order. With the Go toolchain's identity it
// keys the cache of built inits.
func SourceDigest() string {
	h := sha256.New()
	names, err := sourceFiles()
	if err != nil {
		panic("guest: embedded source unreadable: " + err.Error()) // cannot happen: embed.FS
	}
	for _, n := range names {
		b, err := source.ReadFile(n)
		if err != nil {
			panic("guest: embedded source unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// buildEnv is the environment of the init's build: static, linux/amd64,
// baseline amd64 instructions (any x86-64 CPU model QEMU offers), no
// workspace, no toolchain download.
var buildEnv = []string{
	"CGO_ENABLED=0",
	"GOOS=linux",
	"GOARCH=amd64",
	"GOAMD64=v1",
	"GOFLAGS=-mod=mod",
	"GOWORK=off",
	"GOTOOLCHAIN=local",
}

// Build compiles the init with goBin (a go command) into out, a static
// linux/amd64 executable. The same source and toolchain give the same
// bytes. out is replaced atomically.
func Build(ctx context.Context, goBin string, out string) error {
	if goBin == "" {
		goBin = "go"
	}
	if _, err := exec.LookPath(goBin); err != nil {
		return fmt.Errorf("build guest init: %w; install Go (https://go.dev/dl) or put it in PATH", err)
	}
	tmp, err := os.MkdirTemp("", "unikfile-init-src-")
	if err != nil {
		return fmt.Errorf("build guest init: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeSource(tmp); err != nil {
		return fmt.Errorf("build guest init: %w", err)
	}

	outAbs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("build guest init: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(outAbs), 0o755); err != nil {
		return fmt.Errorf("build guest init: %w", err)
	}
	pf, err := os.CreateTemp(filepath.Dir(outAbs), "."+filepath.Base(outAbs)+".partial-*")
	if err != nil {
		return fmt.Errorf("build guest init: %w", err)
	}
	partial := pf.Name()
	pf.Close()
	defer os.Remove(partial)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", partial, "./guest/init"}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = tmp
	cmd.Env = withEnv(os.Environ(), buildEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 3 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("build guest init: %s (env %s): %w\n%s",
			commandLine(goBin, args), strings.Join(buildEnv, " "), err, tail(stderr.String(), 20))
	}
	if err := os.Rename(partial, outAbs); err != nil {
		return fmt.Errorf("build guest init: %w", err)
	}
	return nil
}

// writeSource lays the embedded files out as a module in dir.
func writeSource(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		return err
	}
	names, err := sourceFiles()
	if err != nil {
		return err
	}
	for _, n := range names {
		b, err := source.ReadFile(n)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "guest", filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// withEnv returns env with the KEY=value pairs of set replacing any of the
// same keys.
func withEnv(env, set []string) []string {
	out := make([]string, 0, len(env)+len(set))
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		replaced := false
		for _, s := range set {
			if strings.HasPrefix(s, k+"=") {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return append(out, set...)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// commandLine renders a command for messages, quoting arguments with spaces.
func commandLine(name string, args []string) string {
	parts := []string{name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

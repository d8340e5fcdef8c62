// Command mkbuilders makes the tests' offline builder images on this
// machine if it does not have them yet (scripts/install-deps --test runs
// it), so that the first test that needs them does not spend its time
// limit downloading toolchains. It starts a buildkitd of its own, as the
// tests do, and needs root.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
)

func main() {
	if why := testenv.MissingBuilders(); why != "" {
		fmt.Fprintln(os.Stderr, "mkbuilders: skipped:", why)
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkbuilders:", err)
		os.Exit(1)
	}
}

func run() error {
	tmp, err := os.MkdirTemp("", "unikfile-mkbuilders-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"bk", "reg"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	bk, err := testenv.StartBuildKit(filepath.Join(tmp, "bk"))
	if err != nil {
		return err
	}
	defer bk.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	start := time.Now()
	b, err := testenv.StartBuilders(ctx, bk.Addr, filepath.Join(tmp, "reg"))
	if err != nil {
		return err
	}
	defer b.Stop()
	dir, _ := testenv.BuildersDir()
	fmt.Printf("mkbuilders: %d builder images in %s (%s)\n", len(b.Images), dir, time.Since(start).Round(time.Second))
	return nil
}

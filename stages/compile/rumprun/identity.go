package rumprun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
)

// Backing programs: the toolchain's compiler drivers run the host's C
// compiler and its binutils wrappers the host's linker (both from Debian's
// gcc and binutils), so these are part of what it is.
var backing = []struct{ program, hint string }{
	{"/usr/bin/cc", "install Debian's gcc, which the Rumprun toolchain compiles with: apt-get install gcc"},
	{"/usr/bin/ld", "install Debian's binutils, which the Rumprun toolchain links with: apt-get install binutils"},
}

// Identity identifies the toolchain for cache keys: its folder, every
// file in it by path, mode, size and modification time (a toolchain built
// or unpacked again has new times, and relocate.sh rewrites the files that
// name the folder), and the version of the host compiler and linker it
// runs. Reading metadata keeps it cheap for a tree of 130 MiB.
func (t *Toolchain) Identity(ctx context.Context) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "dir %s\n", t.Dir)
	err := filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(t.Dir, p)
		switch typ := d.Type(); {
		case typ&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "l %s %s\n", rel, target)
		case typ.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "f %s %o %d %d\n", rel, fi.Mode().Perm(), fi.Size(), fi.ModTime().UnixNano())
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("Rumprun toolchain %s: %w", t.Dir, err)
	}
	var versions []string
	for _, b := range backing {
		if _, err := os.Stat(b.program); err != nil {
			return "", &run.NotFoundError{Program: b.program, Hint: b.hint}
		}
		res, err := run.Run(ctx, run.Cmd{Path: b.program, Args: []string{"--version"}, Hint: b.hint})
		if err != nil {
			return "", fmt.Errorf("Rumprun toolchain's backing %s: %w", b.program, err)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), "\n")
		versions = append(versions, b.program+" "+first)
	}
	return fmt.Sprintf("rumprun %s (%s) tree %s; %s", t.Dir, Platform, hex.EncodeToString(h.Sum(nil))[:24], strings.Join(versions, "; ")), nil
}

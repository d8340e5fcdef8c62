package compile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/ignore"
	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/elfdeps"
)

// Helpers shared by the languages whose programs are dynamic ELF files or
// interpreters from the host: toolchain identity, copying the app's source
// into the bundle, and completing the bundle with its shared libraries.

// AppDir is where the app's own files go in a bundle.
const AppDir = "/app"

// ldSoCache changes whenever the host's libraries are installed or
// upgraded (apt runs ldconfig), so its digest stands for the libraries a
// closure copies from the host.
const ldSoCache = "/etc/ld.so.cache"

// toolIdentity identifies a program in PATH for cache keys: its resolved
// path and what it prints for versionArgs, plus the host's library state.
// A missing program is a *run.NotFoundError with hint.
func toolIdentity(ctx context.Context, program, hint string, versionArgs ...string) (string, error) {
	p, err := run.Look(program, hint)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		real = p
	}
	res, err := run.Run(ctx, run.Cmd{Path: p, Args: versionArgs, Hint: hint})
	if err != nil {
		return "", fmt.Errorf("%s: %w", program, err)
	}
	out := strings.TrimSpace(string(res.Stdout) + string(res.Stderr))
	return fmt.Sprintf("%s=%s (%s) %q; libs %s", program, p, real, out, hostLibsDigest()), nil
}

// hostLibsDigest is the digest of the loader's cache, or "none".
func hostLibsDigest() string {
	f, err := os.Open(ldSoCache)
	if err != nil {
		return "none"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// copySource copies app's source into rootfs under AppDir, honouring
// .unikignore and .dockerignore (as the source digest does).
func copySource(src, rootfs string) error {
	m, err := ignore.Load(src)
	if err != nil {
		return err
	}
	return copyTree(src, filepath.Join(rootfs, filepath.FromSlash(AppDir)), func(rel string, isDir bool) bool {
		return m.Match(rel, isDir)
	})
}

// copyTree copies files, directories and symbolic links from src to dst;
// skip (given slash-separated paths relative to src) leaves some out.
// Permissions keep only the executable bit; times are not copied.
func copyTree(src, dst string, skip func(rel string, isDir bool) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && skip != nil && skip(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return os.MkdirAll(out, 0o755)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			perm := fs.FileMode(0o644)
			if fi.Mode()&0o111 != 0 {
				perm = 0o755
			}
			return copyFile(p, out, perm)
		default:
			return nil // sockets, pipes, devices: not part of an app
		}
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyHostPath copies a host file or directory tree into rootfs at the
// same path, skipping what skip names (paths relative to hostPath).
func copyHostPath(hostPath, rootfs string, skip func(rel string, isDir bool) bool) error {
	return copyTree(hostPath, filepath.Join(rootfs, filepath.FromSlash(hostPath)), skip)
}

// Closure completes rootfs with the shared libraries and loader of the
// ELF files among roots (image paths; folders are searched for ELF files),
// taken from the filesystem from (the host's for the local executor, the
// builder image's for BuildKit), and the files of /etc that dynamic
// programs read, for the linux base. It returns the environment the
// program needs (LD_LIBRARY_PATH when libraries come from directories the
// loader does not search by itself).
func Closure(rootfs string, from elfdeps.FS, roots ...string) ([]string, error) {
	return targets["linux"].closure(rootfs, from, roots...)
}

// closure is Closure for the base of app, from the host (the local
// executor).
func closure(app *lang.App, rootfs string, roots ...string) ([]string, error) {
	target, err := TargetFor(app.Base)
	if err != nil {
		return nil, err
	}
	return target.closure(rootfs, elfdeps.Host, roots...)
}

// closure is Closure as the target's kernel loads programs (the libraries
// it supplies itself, where its loader looks).
func (t Target) closure(rootfs string, from elfdeps.FS, roots ...string) ([]string, error) {
	var files []string
	for _, r := range roots {
		fi, err := os.Stat(filepath.Join(rootfs, filepath.FromSlash(r)))
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, r)
			continue
		}
		elfs, err := elfdeps.ELFFiles(rootfs, r)
		if err != nil {
			return nil, err
		}
		files = append(files, elfs...)
	}
	opts := t.Closure
	opts.From = from
	res, err := elfdeps.Pack(rootfs, files, opts)
	if err != nil {
		return nil, err
	}
	if !res.Dynamic {
		return nil, nil
	}
	if err := elfdeps.EtcFiles(rootfs); err != nil {
		return nil, err
	}
	var env []string
	if e := res.LibraryPathEnv(); e != "" {
		env = append(env, e)
	}
	return env, nil
}

// bundleSize is the total size of the regular files under rootfs.
func bundleSize(rootfs string) (int64, error) {
	var total int64
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// baseMemoryMiB is what the guest's kernel, init and modules need, with
// room for a small app; the package stage holds the initramfs in memory
// twice while the kernel unpacks it.
const baseMemoryMiB = 160

// memoryFor is the guest memory a bundle needs: the base, the bundle
// twice, and the runtime's extra, rounded up to 64 MiB.
func memoryFor(rootfs string, extraMiB int) (int, error) {
	size, err := bundleSize(rootfs)
	if err != nil {
		return 0, err
	}
	mib := baseMemoryMiB + int(2*size>>20) + extraMiB
	return (mib + 63) / 64 * 64, nil
}

// mainFile is app.Main as a clean relative path inside the source, or
// def when Main is empty; it must name an existing file.
func mainFile(app *lang.App, def ...string) (string, error) {
	cands := def
	if app.Main != "" && app.Main != "." {
		cands = []string{app.Main}
	}
	for _, c := range cands {
		rel := path.Clean(filepath.ToSlash(c))
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("main = %q must be a path inside the app's source", c)
		}
		full := filepath.Join(app.Source, filepath.FromSlash(rel))
		if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
			// Through a symlink it must still be a file of the source: the
			// image holds the source, not the host.
			realSrc, err1 := filepath.EvalSymlinks(app.Source)
			realMain, err2 := filepath.EvalSymlinks(full)
			if r, err := filepath.Rel(realSrc, realMain); err1 != nil || err2 != nil || err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return "", fmt.Errorf("main = %q is a symlink to %s, outside the app's source; put the program itself in the source", c, realMain)
			}
			return rel, nil
		}
	}
	if app.Main != "" && app.Main != "." {
		return "", fmt.Errorf("main = %q: no such file in %s", app.Main, app.Source)
	}
	return "", fmt.Errorf("no entry point in %s: looked for %s; set main = \"FILE\" in the app block", app.Source, strings.Join(def, ", "))
}

// loadIgnore is the source's ignore rules.
func loadIgnore(src string) (*ignore.Matcher, error) { return ignore.Load(src) }

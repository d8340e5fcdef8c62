package compile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

// MirageInfoFile, in the bundle of an OCaml app, describes the MirageOS
// unikernel the bundle holds (MirageUnikernel, JSON).
const MirageInfoFile = "/unikernel.json"

// MirageUnikernel is a MirageOS unikernel built by the ocaml language.
type MirageUnikernel struct {
	// Name is the unikernel's name (register "NAME" in config.ml).
	Name string `json:"name"`
	// Target is the Solo5 target it was configured for (virtio, spt).
	Target string `json:"target"`
	// Kernel is its path in the bundle.
	Kernel string `json:"kernel"`
	// Mirage is the MirageOS version that built it.
	Mirage string `json:"mirage"`
	// Keys are the runtime keys it takes as boot parameters
	// (--NAME=VALUE), sorted.
	Keys []string `json:"keys"`
	// Devices are the Solo5 devices of its manifest.
	Devices []Solo5Device `json:"devices"`
}

// Solo5Device is a device of a Solo5 unikernel's manifest.
type Solo5Device struct {
	Name string `json:"name"`
	Type string `json:"type"` // NET_BASIC, BLOCK_BASIC
}

// HasKey says whether the unikernel takes the boot parameter --name.
func (u *MirageUnikernel) HasKey(name string) bool {
	i := sort.SearchStrings(u.Keys, name)
	return i < len(u.Keys) && u.Keys[i] == name
}

// ReadMirageUnikernel reads the unikernel description of a bundle whose
// tree is rootfs.
func ReadMirageUnikernel(rootfs string) (*MirageUnikernel, error) {
	b, err := os.ReadFile(filepath.Join(rootfs, filepath.FromSlash(MirageInfoFile)))
	if err != nil {
		return nil, fmt.Errorf("the bundle holds no MirageOS unikernel (%w): it was not built by language \"ocaml\"", err)
	}
	var u MirageUnikernel
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("%s: %w", MirageInfoFile, err)
	}
	return &u, nil
}

// ocamlLang builds MirageOS 3 unikernels: `mirage configure -t TARGET`
// and `mirage build` in a copy of the source, with a MirageOS toolchain
// from the app's mirage block, $UNIKFILE_MIRAGE_TOOLCHAIN or PATH. The
// Solo5 target is the base's (compile.Target.Solo5). The bundle holds the
// unikernel and its description (MirageInfoFile); the package stage's
// mirage base makes it an image.
type ocamlLang struct{}

// solo5Target is the Solo5 target apps of app's base are built for.
func solo5Target(app *lang.App) (string, error) {
	t, err := TargetFor(app.Base)
	if err != nil {
		return "", err
	}
	if t.Solo5 == "" {
		return "", fmt.Errorf("app %s: language \"ocaml\" builds MirageOS unikernels, which run on base \"mirage\", not %q", app.Name, t.Name)
	}
	return t.Solo5, nil
}

func (ocamlLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	target, err := solo5Target(app)
	if err != nil {
		return "", err
	}
	tc, err := resolveMirage(app, target)
	if err != nil {
		return "", err
	}
	return tc.identity(ctx)
}

// ToolchainScope: apps naming the same toolchain (or none) for the same
// base share its identity within a run.
func (ocamlLang) ToolchainScope(app *lang.App) (string, bool) {
	setting, from := mirageSetting(app)
	return app.Base + "\x00" + from + "\x00" + setting, true
}

func (ocamlLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

// Program is where the unikernel lies in the bundle.
func (ocamlLang) Program(app *lang.App) string {
	target, err := solo5Target(app)
	if err != nil {
		target = "unknown"
	}
	return "/unikernel." + target
}

func (l ocamlLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	target, err := solo5Target(app)
	if err != nil {
		return Launch{}, err
	}
	tc, err := resolveMirage(app, target)
	if err != nil {
		return Launch{}, err
	}
	cfg, err := mainFile(app, "config.ml")
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w (a MirageOS unikernel is configured by its config.ml)", app.Name, err)
	}
	work, release, err := mirageWorkDir(ctx, app.Source)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	defer release()
	src := filepath.Join(work, "src")
	if err := copyMirageSource(app.Source, src); err != nil {
		return Launch{}, fmt.Errorf("app %s: copy the source: %w", app.Name, err)
	}
	environ, err := tc.environ(work)
	if err != nil {
		return Launch{}, err
	}
	dir := filepath.Join(src, filepath.FromSlash(path.Dir(cfg)))
	var out bytes.Buffer
	w := io.MultiWriter(&out, log)
	mirage := func(args ...string) error {
		_, err := run.Run(ctx, run.Cmd{Path: tc.bin("mirage"), Args: args, Dir: dir, Env: environ, Stdout: w, Stderr: w})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *run.Error
		if !errors.As(err, &re) {
			return err
		}
		return fmt.Errorf("mirage %s of app %s in %s failed (MirageOS toolchain %s, from %s):\n%s",
			args[0], app.Name, filepath.Join(app.Source, path.Dir(cfg)), tc.Prefix, tc.From, compilerLines(out.Bytes(), 30))
	}
	if err := mirage("configure", "-f", path.Base(cfg), "-t", target); err != nil {
		return Launch{}, err
	}
	out.Reset()
	if err := mirage("build"); err != nil {
		return Launch{}, err
	}
	kernel, err := builtUnikernel(dir, target)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	info, err := describeUnikernel(ctx, tc, environ, dir, kernel, l.Program(app))
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := copyFile(kernel, filepath.Join(rootfs, filepath.FromSlash(info.Kernel)), 0o644); err != nil {
		return Launch{}, err
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(rootfs, filepath.FromSlash(MirageInfoFile)), b, 0o644); err != nil {
		return Launch{}, err
	}
	return Launch{}, nil
}

// mirageWorkDir is the folder a build of the source in source runs in,
// locked for it: the same folder for every build of that source, since
// MirageOS writes the build folder's path into the unikernel (in the same
// folder, the same source and toolchain give the same bytes). It starts
// empty; release removes it and unlocks.
func mirageWorkDir(ctx context.Context, source string) (string, func(), error) {
	sum := sha256.Sum256([]byte(source))
	root := filepath.Join(os.TempDir(), fmt.Sprintf("unikfile-mirage-%d", os.Getuid()))
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", nil, err
	}
	dir := filepath.Join(root, hex.EncodeToString(sum[:8]))
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, err
	}
	for {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			lock.Close()
			return "", nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			lock.Close()
			return "", nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	release := func() {
		_ = os.RemoveAll(dir)
		lock.Close() // unlocks
	}
	// What a build killed half-way left.
	if err := os.RemoveAll(dir); err != nil {
		release()
		return "", nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

// mirageOutputs are the extensions of the unikernels mirage build writes
// (one per Solo5 or Xen target).
var mirageOutputs = []string{".virtio", ".spt", ".hvt", ".muen", ".genode", ".xen", ".qubes"}

// copyMirageSource copies the source, as the source digest sees it,
// without what an earlier mirage build left in it (_build, unikernels):
// the build starts clean.
func copyMirageSource(src, dst string) error {
	m, err := loadIgnore(src)
	if err != nil {
		return err
	}
	return copyTree(src, dst, func(rel string, isDir bool) bool {
		if m.Match(rel, isDir) {
			return true
		}
		if isDir {
			return path.Base(rel) == "_build"
		}
		for _, ext := range mirageOutputs {
			if strings.HasSuffix(rel, ext) {
				return true
			}
		}
		return false
	})
}

// builtUnikernel is the one NAME.TARGET file mirage build wrote in dir.
func builtUnikernel(dir, target string) (string, error) {
	found, err := filepath.Glob(filepath.Join(dir, "*."+target))
	if err != nil {
		return "", err
	}
	var files []string
	for _, f := range found {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	switch len(files) {
	case 1:
		return files[0], nil
	case 0:
		return "", fmt.Errorf("mirage build wrote no .%s unikernel", target)
	}
	return "", fmt.Errorf("mirage build wrote several .%s unikernels (%v); a config.ml registers one", target, files)
}

// describeUnikernel reads what the package stage needs to know of the
// unikernel: its Solo5 ABI (which must be target's), the devices of its
// manifest (solo5-elftool), its runtime keys (key_gen.ml) and the
// MirageOS version.
func describeUnikernel(ctx context.Context, tc *mirageToolchain, environ []string, dir, kernel, program string) (*MirageUnikernel, error) {
	var abi struct {
		Target string `json:"target"`
	}
	if err := elftool(ctx, tc, "query-abi", kernel, &abi); err != nil {
		return nil, err
	}
	if abi.Target != tc.Target {
		return nil, fmt.Errorf("%s is a Solo5 %q unikernel, not %q", filepath.Base(kernel), abi.Target, tc.Target)
	}
	var mft struct {
		Devices []Solo5Device `json:"devices"`
	}
	if err := elftool(ctx, tc, "query-manifest", kernel, &mft); err != nil {
		return nil, err
	}
	keys, err := runtimeKeys(dir)
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	version := ""
	if ocamlfind, err := lookIn(environ, "ocamlfind"); err == nil {
		if res, err := run.Run(ctx, run.Cmd{Path: ocamlfind, Args: []string{"query", "-format", "%v", "mirage"}, Env: environ}); err == nil {
			version = strings.TrimPrefix(strings.TrimSpace(string(res.Stdout)), "v")
		}
	}
	return &MirageUnikernel{
		Name:    strings.TrimSuffix(filepath.Base(kernel), "."+tc.Target),
		Target:  tc.Target,
		Kernel:  program,
		Mirage:  version,
		Keys:    keys,
		Devices: append([]Solo5Device{}, mft.Devices...),
	}, nil
}

// elftool runs `solo5-elftool COMMAND kernel` and decodes its JSON.
func elftool(ctx context.Context, tc *mirageToolchain, command, kernel string, v any) error {
	res, err := run.Run(ctx, run.Cmd{Path: tc.bin("solo5-elftool"), Args: []string{command, kernel}})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res.Stdout, v); err != nil {
		return fmt.Errorf("solo5-elftool %s %s: %w", command, kernel, err)
	}
	return nil
}

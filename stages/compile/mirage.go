package compile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

// MirageToolchainEnv names a MirageOS toolchain when the app's mirage
// block does not.
const MirageToolchainEnv = "UNIKFILE_MIRAGE_TOOLCHAIN"

// mirageHint says how to get a MirageOS toolchain.
const mirageHint = "install MirageOS 3 with opam (opam install \"mirage<4\", in a switch with OCaml 4.x), then run `eval $(opam env)`, " +
	"or set " + MirageToolchainEnv + "=$(opam var prefix) or toolchain in the app's mirage block (mirage { toolchain = \"/path/to/prefix\" })"

// mirageSettings is implemented by the settings of a base whose block can
// name a MirageOS toolchain (stages/package/mirage's); the compile stage
// cannot import the package stage.
type mirageSettings interface {
	MirageToolchain() string
}

// mirageToolchain is a MirageOS toolchain for one Solo5 target: a prefix
// (an opam switch, or one of the prefixes of a relocatable toolchain)
// holding bin/mirage, bin/solo5-elftool and lib/ with the findlib
// packages and pkg-config files of that target.
type mirageToolchain struct {
	Prefix string
	Target string
	// From says where it was found, for messages: `mirage { toolchain }`,
	// $UNIKFILE_MIRAGE_TOOLCHAIN, or PATH.
	From string
	// FromPath is set when it was found through PATH: the environment
	// (opam env) is the user's, left as it is.
	FromPath bool
}

// mirageSetting is what names the app's toolchain: the mirage block's
// toolchain, else the environment variable; "" means PATH.
func mirageSetting(app *lang.App) (setting, from string) {
	if s, ok := app.BaseSettings.(mirageSettings); ok && s.MirageToolchain() != "" {
		return s.MirageToolchain(), "toolchain in app " + app.Name + "'s mirage block"
	}
	if v := os.Getenv(MirageToolchainEnv); v != "" {
		return v, "$" + MirageToolchainEnv
	}
	return "", "PATH"
}

// resolveMirage finds the MirageOS toolchain of app for target.
func resolveMirage(app *lang.App, target string) (*mirageToolchain, error) {
	setting, from := mirageSetting(app)
	if setting == "" {
		p, err := exec.LookPath("mirage")
		if err != nil {
			return nil, &run.NotFoundError{Program: "mirage", Hint: "no MirageOS toolchain: " + mirageHint}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		return &mirageToolchain{Prefix: filepath.Dir(filepath.Dir(abs)), Target: target, From: from, FromPath: true}, nil
	}
	dir, err := filepath.Abs(setting)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("MirageOS toolchain %s (%s): %w; %s", setting, from, err, mirageHint)
	} else if !fi.IsDir() && filepath.Base(dir) == "mirage" {
		dir = filepath.Dir(filepath.Dir(dir)) // PREFIX/bin/mirage
	}
	for _, prefix := range []string{filepath.Join(dir, target), dir} {
		if fi, err := os.Stat(filepath.Join(prefix, "bin", "mirage")); err == nil && fi.Mode().IsRegular() {
			return &mirageToolchain{Prefix: prefix, Target: target, From: from}, nil
		}
	}
	return nil, fmt.Errorf("MirageOS toolchain %s (%s) has neither bin/mirage nor %s/bin/mirage: point it at an opam switch's prefix (opam var prefix) "+
		"or at a folder with one prefix per Solo5 target (%s/, spt/); %s", dir, from, target, target, mirageHint)
}

// bin is the path of one of the toolchain's programs.
func (t *mirageToolchain) bin(name string) string { return filepath.Join(t.Prefix, "bin", name) }

// environ is the environment mirage runs in; work is a folder for the
// opam stand-in (MirageOS 3 asks `opam config var prefix` where its
// pkg-config files are). A toolchain found through PATH keeps the user's
// environment (opam env), with the stand-in only when there is no opam.
func (t *mirageToolchain) environ(work string) ([]string, error) {
	shim := filepath.Join(work, "opam-shim")
	if err := writeOpamShim(shim, t.Prefix); err != nil {
		return nil, err
	}
	if t.FromPath {
		if _, err := exec.LookPath("opam"); err == nil {
			return os.Environ(), nil
		}
		return run.Environ("PATH=" + shim + string(os.PathListSeparator) + os.Getenv("PATH")), nil
	}
	lib := filepath.Join(t.Prefix, "lib")
	return run.Environ(
		"PATH="+shim+string(os.PathListSeparator)+filepath.Join(t.Prefix, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"OCAMLPATH="+lib,
		"OCAMLFIND_DESTDIR="+lib,
		"PKG_CONFIG_PATH="+filepath.Join(lib, "pkgconfig"),
		"MIRAGE_PREFIX="+t.Prefix,
	), nil
}

// writeOpamShim writes dir/opam, which answers the questions MirageOS 3's
// configure asks opam (the prefix, its lib and bin) for prefix, and
// refuses the rest: unikfile never installs packages.
func writeOpamShim(dir, prefix string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	script := "#!/bin/sh\n" +
		"# Written by unikfile: MirageOS 3's configure asks opam for the toolchain's prefix.\n" +
		"case \"$*\" in\n" +
		"  \"var prefix\"|\"config var prefix\") echo " + q(prefix) + " ;;\n" +
		"  \"var lib\"|\"config var lib\") echo " + q(filepath.Join(prefix, "lib")) + " ;;\n" +
		"  \"var bin\"|\"config var bin\") echo " + q(filepath.Join(prefix, "bin")) + " ;;\n" +
		"  *) echo \"opam $*: unikfile builds MirageOS unikernels with the packages already in the toolchain and never runs opam; install what the unikernel needs into the toolchain yourself (mirage configure, then make depend)\" >&2; exit 1 ;;\n" +
		"esac\n"
	return os.WriteFile(filepath.Join(dir, "opam"), []byte(script), 0o755)
}

// lookIn finds program in the PATH of environ.
func lookIn(environ []string, program string) (string, error) {
	for _, d := range filepath.SplitList(run.Getenv(environ, "PATH")) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, program)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// mirageVersionRe finds mirage's version in `ocamlfind list`.
var mirageVersionRe = regexp.MustCompile(`(?m)^mirage +\(version: v?([^)]*)\)`)

// identity is the toolchain's identity for cache keys: where it is, the
// Solo5 target, a stamp of every file of the prefix (path, size, mode,
// time), every findlib package it sees with its version (the toolchain's
// and the system's: Debian's OCaml and its libraries), and the C
// compiler and linker the unikernel is linked with. It also checks that
// the toolchain is MirageOS 3.
func (t *mirageToolchain) identity(ctx context.Context) (string, error) {
	for _, p := range []string{"mirage", "solo5-elftool"} {
		if _, err := os.Stat(t.bin(p)); err != nil {
			return "", fmt.Errorf("MirageOS toolchain %s (%s): %w; %s", t.Prefix, t.From, err, mirageHint)
		}
	}
	work, err := os.MkdirTemp("", "unikfile-mirage-id-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	environ, err := t.environ(work)
	if err != nil {
		return "", err
	}
	stamp, err := treeStamp(t.Prefix)
	if err != nil {
		return "", fmt.Errorf("MirageOS toolchain %s: %w", t.Prefix, err)
	}
	ocamlfind, err := lookIn(environ, "ocamlfind")
	if err != nil {
		return "", &run.NotFoundError{Program: "ocamlfind", Hint: "the MirageOS toolchain needs OCaml's findlib: apt-get install ocaml-findlib (Debian's OCaml 4.13.1 for a toolchain built against it), or run `eval $(opam env)` for an opam switch"}
	}
	res, err := run.Run(ctx, run.Cmd{Path: ocamlfind, Args: []string{"list"}, Env: environ})
	if err != nil {
		return "", fmt.Errorf("MirageOS toolchain %s: %w", t.Prefix, err)
	}
	version := "unknown"
	if m := mirageVersionRe.FindSubmatch(res.Stdout); m != nil {
		version = string(m[1])
	} else {
		return "", fmt.Errorf("MirageOS toolchain %s (%s): ocamlfind (%s) finds no mirage package; is it a MirageOS toolchain? %s", t.Prefix, t.From, ocamlfind, mirageHint)
	}
	if major, err := strconv.Atoi(strings.SplitN(version, ".", 2)[0]); err == nil && major >= 4 {
		return "", fmt.Errorf("MirageOS toolchain %s (%s) is MirageOS %s: unikfile builds MirageOS 3 unikernels (mirage configure -t %s, then mirage build with the packages already installed); MirageOS 4 fetches its libraries with opam-monorepo (make depend), which unikfile does not run yet: use a switch with opam install \"mirage<4\"", t.Prefix, t.From, version, t.Target)
	}
	pkgs := sha256.Sum256(res.Stdout)
	env := "unikfile's"
	if t.FromPath {
		env = "the user's"
	}
	id := fmt.Sprintf("mirage %s (%s), target %s, %s environment; prefix %s; findlib %s %s", t.Prefix, version, t.Target, env, stamp, ocamlfind, hex.EncodeToString(pkgs[:8]))
	for _, tool := range []string{"cc", "ld"} {
		p, err := lookIn(environ, tool)
		if err != nil {
			return "", &run.NotFoundError{Program: tool, Hint: "MirageOS links unikernels with the C toolchain: apt-get install gcc binutils"}
		}
		out, err := run.Run(ctx, run.Cmd{Path: p, Args: []string{"--version"}, Env: environ})
		if err != nil {
			return "", err
		}
		first, _, _ := strings.Cut(string(out.Stdout), "\n")
		id += fmt.Sprintf("; %s=%s %q", tool, p, first)
	}
	return id, nil
}

// treeStamp digests the metadata of every file under dir: a toolchain
// that is replaced, rebuilt or patched changes it.
func treeStamp(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %o %d %d\n", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// runtimeOptionsRe finds the command-line names of the runtime keys in
// the key_gen.ml that MirageOS 3 (functoria 3) generates: each key is
// made with Cmdliner.Arg.info ... ?env:(...) ["NAME"; ...].
var runtimeOptionsRe = regexp.MustCompile(`\?env:\((?:[^()]|\([^()]*\))*\)\s*\[([^\]]*)\]`)

var stringLiteralRe = regexp.MustCompile(`"([^"\\]*)"`)

// runtimeKeys are the boot parameters (--NAME=VALUE, or -N for a
// one-letter name) the unikernel configured in dir takes.
func runtimeKeys(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "key_gen.ml"))
	if err != nil {
		return nil, fmt.Errorf("mirage configure wrote no key_gen.ml (%w): is this MirageOS 3?", err)
	}
	if !bytes.Contains(b, []byte("let runtime_keys")) {
		return nil, errors.New("key_gen.ml lists no runtime_keys: is this MirageOS 3?")
	}
	var keys []string
	for _, m := range runtimeOptionsRe.FindAllSubmatch(b, -1) {
		for _, q := range stringLiteralRe.FindAllSubmatch(m[1], -1) {
			keys = append(keys, string(q[1]))
		}
	}
	return keys, nil
}

// compilerLines is the part of a MirageOS build's output worth showing:
// OCaml's missing-interface warning (every generated module has one) is
// dropped, and the rest's last lines kept.
func compilerLines(out []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "Warning 70 [missing-mli]") {
			if k := len(lines) - 1; k >= 0 && strings.HasPrefix(lines[k], "File ") {
				lines = lines[:k]
			}
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

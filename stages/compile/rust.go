package compile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

const cargoHint = "install Rust: apt-get install cargo (or https://rustup.rs)"

// rustLang builds Rust apps with cargo, release profile (--locked when
// Cargo.lock exists), in a copy of the source so that cargo writes no
// Cargo.lock or target/ into it. The binary is main (a [[bin]] name) or
// the package's only binary, installed as /app/main with its
// shared-library closure (the C library, libgcc_s).
type rustLang struct{}

func (rustLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	cargo, err := toolIdentity(ctx, "cargo", cargoHint, "-V")
	if err != nil {
		return "", err
	}
	rustc, err := toolIdentity(ctx, "rustc", cargoHint, "-vV")
	if err != nil {
		return "", err
	}
	id := cargo + "; " + rustc
	for _, v := range []string{"RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_PROFILE_RELEASE_OPT_LEVEL", "RUSTC_WRAPPER"} {
		id += fmt.Sprintf("; %s=%q", v, os.Getenv(v))
	}
	return id, nil
}

func (rustLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

func (rustLang) Program(*lang.App) string { return AppDir + "/main" }

func (rustLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	if _, err := os.Stat(filepath.Join(app.Source, "Cargo.toml")); err != nil {
		return Launch{}, fmt.Errorf("app %s: no Cargo.toml in %s: language \"rust\" builds a cargo package", app.Name, app.Source)
	}
	work, err := os.MkdirTemp("", "unikfile-rust-")
	if err != nil {
		return Launch{}, err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := copySourceTo(app.Source, src); err != nil {
		return Launch{}, err
	}
	_, lockErr := os.Stat(filepath.Join(src, "Cargo.lock"))
	args := CargoBuildArgs(filepath.Join(work, "target"), lockErr == nil, app)
	res, err := run.Run(ctx, run.Cmd{
		Path:   "cargo",
		Args:   args,
		Dir:    src,
		Env:    run.Environ("RUSTFLAGS=" + RustFlags(os.Getenv("RUSTFLAGS"), work)),
		Stderr: log,
		Hint:   cargoHint,
	})
	if err != nil {
		if _, ok := err.(*run.NotFoundError); ok {
			return Launch{}, err
		}
		return Launch{}, fmt.Errorf("cargo build in %s failed:\n%s", app.Source, compilerOutput(err))
	}
	bin, err := CargoBinary(app, res.Stdout)
	if err != nil {
		return Launch{}, err
	}
	return installProgram(ctx, app, bin, rootfs)
}

// CargoBuildArgs are the arguments of cargo for app, building into
// targetDir (--locked when the source has a Cargo.lock).
func CargoBuildArgs(targetDir string, locked bool, app *lang.App) []string {
	args := []string{"build", "--release", "--message-format=json-render-diagnostics", "--target-dir", targetDir}
	if locked {
		args = append(args, "--locked")
	}
	if app.Main != "" && app.Main != "." {
		args = append(args, "--bin", app.Main)
	}
	return args
}

// RustFlags are the RUSTFLAGS of a build in folder work (the copy of the
// source and the target folder are inside it), added to base: the
// folder's name does not reach the binary, and symbols are stripped.
func RustFlags(base, work string) string {
	return strings.TrimSpace(base + " --remap-path-prefix=" + work + "=. -C strip=symbols")
}

// CargoBinary is the one binary cargo's JSON messages (its stdout) say it
// built, or says why there is not one.
func CargoBinary(app *lang.App, stdout []byte) (string, error) {
	var bins []string
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var msg struct {
			Reason     string  `json:"reason"`
			Executable *string `json:"executable"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) == nil && msg.Reason == "compiler-artifact" && msg.Executable != nil {
			bins = append(bins, *msg.Executable)
		}
	}
	switch len(bins) {
	case 0:
		return "", fmt.Errorf("app %s: cargo built no binary: the package needs a src/main.rs or a [[bin]] target", app.Name)
	case 1:
		return bins[0], nil
	}
	names := make([]string, len(bins))
	for i, b := range bins {
		names[i] = filepath.Base(b)
	}
	return "", fmt.Errorf("app %s: the package has several binaries (%s); set main = \"NAME\" to the one to run", app.Name, strings.Join(names, ", "))
}

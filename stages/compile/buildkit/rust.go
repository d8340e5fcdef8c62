package buildkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/stages/compile"
)

// rustLang compiles a cargo package as the local executor does (rust.go
// of stages/compile: the same cargo arguments and RUSTFLAGS), in a copy
// of the source at /work/src, with cargo's registry and git folders and
// the target folder on cache mounts (the target folder is the app's own,
// locked while a build uses it). The binaries cargo reports are stripped
// in the builder; unikfile picks the one to run from cargo's JSON
// messages, as locally.
type rustLang struct{}

func (rustLang) DefaultImage(ctx context.Context) string { return rustImage(ctx) }

func (rustLang) Build(ctx context.Context, r *recipe) (llb.State, error) {
	if _, err := os.Stat(filepath.Join(r.app.Source, "Cargo.toml")); err != nil {
		return llb.State{}, &recipeError{fmt.Errorf("app %s: no Cargo.toml in %s: language \"rust\" builds a cargo package", r.app.Name, r.app.Source)}
	}
	_, lockErr := os.Stat(filepath.Join(r.app.Source, "Cargo.lock"))
	target := workDir + "/target"
	home := r.getenv("CARGO_HOME", r.getenv("HOME", "/root")+"/.cargo")
	var b strings.Builder
	b.WriteString(need("cargo", "Rust's build tool"))
	b.WriteString(need("strip", "binutils"))
	b.WriteString("export RUSTFLAGS=" + q(compile.RustFlags(r.env["RUSTFLAGS"], workDir)) + "\n")
	b.WriteString("cargo " + shArgs(compile.CargoBuildArgs(target, lockErr == nil, r.app)) + " > " + outDir + "/" + metaDir + "/cargo.json\n")
	b.WriteString("cd " + target + "\n")
	b.WriteString(copyCandidates(`-path '*/release/*' ! -path '*/deps/*' ! -path '*/build/*' ! -path '*/.fingerprint/*' ! -path '*/incremental/*'`))
	b.WriteString(stripCandidates())
	work := llb.Scratch().File(llb.Copy(r.src, "/", "/src", &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}),
		llb.WithCustomNamef("[%s] writable copy of the source", r.app.Name))
	ex := r.sh("cargo build --release", workDir+"/src", b.String(),
		llb.AddMount(workDir, work),
		llb.AddMount(target, llb.Scratch(), llb.AsPersistentCacheDir("unikfile-cargo-target-"+r.app.Name, llb.CacheMountLocked)),
		llb.AddMount(home+"/registry", llb.Scratch(), llb.AsPersistentCacheDir("unikfile-cargo-registry", llb.CacheMountShared)),
		llb.AddMount(home+"/git", llb.Scratch(), llb.AsPersistentCacheDir("unikfile-cargo-git", llb.CacheMountShared)),
	)
	return ex.AddMount(outDir, emptyOut()), nil
}

// Finish installs the binary cargo reported as /app/main with its
// libraries from the builder image.
func (rustLang) Finish(ctx context.Context, f *finish) (compile.Launch, error) {
	msgs, err := os.ReadFile(filepath.Join(f.meta, "cargo.json"))
	if err != nil {
		return compile.Launch{}, err
	}
	exe, err := compile.CargoBinary(f.app, msgs)
	if err != nil {
		return compile.Launch{}, err
	}
	rel, err := filepath.Rel(workDir+"/target", exe)
	if err != nil || strings.HasPrefix(rel, "..") {
		return compile.Launch{}, fmt.Errorf("cargo built %s, outside its target folder %s/target", exe, workDir)
	}
	if _, err := compile.PlaceProgram(filepath.Join(f.meta, "cand", rel), f.rootfs); err != nil {
		return compile.Launch{}, err
	}
	return compile.ProgramLaunch(f.rootfs, f.from)
}

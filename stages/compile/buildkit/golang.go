package buildkit

import (
	"context"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile"
)

// language is how one language compiles inside a builder image.
type language interface {
	// DefaultImage is the builder image when the app names none.
	DefaultImage(ctx context.Context) string
	// Compile returns the state of the output folder: program (an
	// absolute path) compiled from src (mounted read-only) in builder.
	// The exec that runs the compiler is named stepName.
	Compile(app *lang.App, builder, src llb.State, program, stepName string) llb.State
}

// Supports says whether the buildkit executor can compile language.
func Supports(language string) bool {
	_, ok := languages[language]
	return ok
}

var languages = map[string]language{
	"go": goLang{},
}

// Mount points inside the builder.
const (
	srcDir    = "/src"
	outDir    = "/out"
	goCache   = "/unikfile-cache/go-build"
	goModPath = "/unikfile-cache/go-mod"
)

type goLang struct{}

// DefaultImage is the official Go image at the host's Go version, so that
// both executors compile with the same toolchain; golang:latest when the
// host has no Go.
func (goLang) DefaultImage(ctx context.Context) string {
	res, err := run.Run(ctx, run.Cmd{Path: "go", Args: []string{"env", "GOVERSION"}})
	if err != nil {
		return "golang:latest"
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(res.Stdout)), "go")
	if v == "" || strings.ContainsAny(v, " +") {
		return "golang:latest"
	}
	return "golang:" + v
}

// Compile runs the local executor's go build (same arguments, same
// environment) with the Go build and module caches on BuildKit cache
// mounts shared by every build on that buildkitd.
func (goLang) Compile(app *lang.App, builder, src llb.State, program, stepName string) llb.State {
	out := llb.Scratch().File(llb.Mkdir(path.Dir(program), 0o755, llb.WithParents(true)),
		llb.WithCustomName("[unikfile] output folder"))
	args := append([]string{"go"}, compile.GoBuildArgs(app, path.Join(outDir, program))...)
	opts := []llb.RunOption{
		llb.Args(args),
		llb.Dir(srcDir),
		llb.AddEnv("GOCACHE", goCache),
		llb.AddEnv("GOMODCACHE", goModPath),
		llb.AddMount(srcDir, src, llb.Readonly),
		llb.AddMount(goCache, llb.Scratch(), llb.AsPersistentCacheDir("unikfile-go-build", llb.CacheMountShared)),
		llb.AddMount(goModPath, llb.Scratch(), llb.AsPersistentCacheDir("unikfile-go-mod", llb.CacheMountShared)),
		llb.WithCustomName(stepName),
	}
	for _, kv := range compile.GoBuildEnv {
		k, v, _ := strings.Cut(kv, "=")
		opts = append(opts, llb.AddEnv(k, v))
	}
	return builder.Run(opts...).AddMount(outDir, out)
}

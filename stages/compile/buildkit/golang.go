package buildkit

import (
	"context"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/stages/compile"
)

const (
	goCache   = cacheDir + "/go-build"
	goModPath = cacheDir + "/go-mod"
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

// Build runs the local executor's go build (same arguments, same
// environment) with the Go build and module caches on BuildKit cache
// mounts shared by every build on that buildkitd.
func (goLang) Build(ctx context.Context, r *recipe) (llb.State, error) {
	out := emptyOut().File(llb.Mkdir(path.Join("/", compile.RootfsDir, path.Dir(r.program)), 0o755, llb.WithParents(true)),
		llb.WithCustomName("[unikfile] output folder"))
	main := r.app.Main
	if main == "" {
		main = "."
	}
	args := append([]string{"go"}, compile.GoBuildArgs(r.app, outRootfs+r.program)...)
	opts := []llb.RunOption{
		llb.Args(args),
		llb.Dir(srcDir),
		llb.AddEnv("GOCACHE", goCache),
		llb.AddEnv("GOMODCACHE", goModPath),
		llb.AddMount(srcDir, r.src, llb.Readonly),
		llb.AddMount(goCache, llb.Scratch(), llb.AsPersistentCacheDir("unikfile-go-build", llb.CacheMountShared)),
		llb.AddMount(goModPath, llb.Scratch(), llb.AsPersistentCacheDir("unikfile-go-mod", llb.CacheMountShared)),
		r.named(main),
	}
	for _, kv := range compile.GoBuildEnv {
		k, v, _ := strings.Cut(kv, "=")
		opts = append(opts, llb.AddEnv(k, v))
	}
	return r.builder.Run(opts...).AddMount(outDir, out), nil
}

// Finish has nothing to do: the program is static.
func (goLang) Finish(context.Context, *finish) (compile.Launch, error) { return compile.Launch{}, nil }

package buildkit

import (
	"context"
	"fmt"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/stages/compile"
)

// nodeLang packs the builder image's node as the local executor packs the
// host's (node.go of stages/compile): the binary from the image, the
// source in /app, and with a package-lock.json `npm ci --omit=dev` into
// the bundle (the source's own node_modules left out), with npm's cache
// on a cache mount. The builtin modules a node loads from the filesystem
// (Debian's) are packed too.
type nodeLang struct{}

func (nodeLang) DefaultImage(ctx context.Context) string { return nodeImage(ctx) }

const nodeFile = "node"

func (nodeLang) Build(ctx context.Context, r *recipe) (llb.State, error) {
	if _, err := compile.NodeMain(r.app); err != nil {
		return llb.State{}, &recipeError{err}
	}
	lock := compile.HasLock(r.app)
	script := need("node", "Node.js")
	if lock {
		script += need("npm", "for the source's package-lock.json")
	}
	script += `readlink -f "$(command -v node)" > ` + outDir + "/" + metaDir + "/" + nodeFile + "\n"
	asked := r.sh("node (where is it)", srcDir, script).AddMount(outDir, emptyOut())
	b, err := r.read(ctx, asked, "/"+metaDir+"/"+nodeFile)
	if err != nil {
		return llb.State{}, err
	}
	node := trimLine(b)
	root := "/" + compile.RootfsDir
	st := asked.File(llb.Copy(r.builder, node, root+node, &llb.CopyInfo{CreateDestPath: true}),
		llb.WithCustomNamef("[%s] node %s", r.app.Name, node))
	var excl []string
	if lock {
		excl = []string{"node_modules"}
	}
	st = st.File(llb.Copy(r.src, "/", root+compile.AppDir, &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true, ExcludePatterns: excl}),
		llb.WithCustomNamef("[%s] the source into %s", r.app.Name, compile.AppDir))
	if !lock {
		return st, nil
	}
	npmCache := cacheDir + "/npm"
	return r.sh("npm ci", outRootfs+compile.AppDir, "npm "+shArgs(compile.NpmCIArgs)+"\n",
		llb.AddEnv("npm_config_cache", npmCache),
		llb.AddMount(npmCache, llb.Scratch(), llb.AsPersistentCacheDir("unikfile-npm", llb.CacheMountShared)),
	).AddMount(outDir, st), nil
}

func (nodeLang) Finish(ctx context.Context, f *finish) (compile.Launch, error) {
	node, err := f.readMeta(nodeFile)
	if err != nil {
		return compile.Launch{}, err
	}
	main, err := compile.NodeMain(f.app)
	if err != nil {
		return compile.Launch{}, err
	}
	env, err := compile.Closure(f.rootfs, f.from, compile.NodeRoots(node)...)
	if err != nil {
		return compile.Launch{}, err
	}
	if err := compile.PackNodeBuiltins(f.rootfs, f.from, node); err != nil {
		return compile.Launch{}, fmt.Errorf("node's builtin modules: %w", err)
	}
	return compile.NodeLaunch(node, main, env), nil
}

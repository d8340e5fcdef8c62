package buildkit

import (
	"context"
	"os"
	"path"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/stages/compile"
)

// javaLang compiles as the local executor does (java.go of
// stages/compile), with the JDK of the builder image's javac: javac (or
// the source's jar), jdeps, then jlink with the modules jdeps found and
// those of UNIKFILE_JAVA_MODULES, with the same arguments (but for the
// class-data-sharing archive, which it leaves out: see Build).
type javaLang struct{}

func (javaLang) DefaultImage(ctx context.Context) string { return temurinImage(ctx) }

// HostSettings: the modules added from the environment.
func (javaLang) HostSettings() string {
	return compile.JavaModulesEnv + "=" + os.Getenv(compile.JavaModulesEnv)
}

const (
	jdkFile   = "jdk"
	jdepsFile = "jdeps"
)

func (javaLang) Build(ctx context.Context, r *recipe) (llb.State, error) {
	var b strings.Builder
	b.WriteString(need("javac", "a JDK"))
	b.WriteString(`javac=$(readlink -f "$(command -v javac)"); home=${javac%/bin/javac}` + "\n")
	for _, t := range compile.JDKTools {
		b.WriteString(`[ -e "$home/` + t + `" ] || { echo "the JDK at $home (of $javac) has no ` + t +
			`, which a jlink'd runtime needs: use a builder image with a full JDK" >&2; exit 1; }` + "\n")
	}
	meta := outDir + "/" + metaDir
	b.WriteString(`printf '%s\n' "$home" > ` + meta + "/" + jdkFile + "\n")
	base := emptyOut()
	var analyse string
	if compile.JavaJar(r.app) {
		rel, err := compile.JavaJarFile(r.app)
		if err != nil {
			return llb.State{}, &recipeError{err}
		}
		base = base.File(llb.Copy(r.src, "/", "/"+compile.RootfsDir+compile.AppDir, &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}),
			llb.WithCustomNamef("[%s] the source into %s", r.app.Name, compile.AppDir))
		analyse = outRootfs + path.Join(compile.AppDir, rel)
	} else {
		srcs, err := compile.JavaSources(r.app)
		if err != nil {
			return llb.State{}, &recipeError{err}
		}
		analyse = outRootfs + compile.AppDir + "/classes"
		b.WriteString(`"$home/bin/javac" ` + shArgs(compile.JavacArgs(analyse, srcs)) + "\n")
	}
	b.WriteString(`"$home/bin/jdeps" ` + shArgs(compile.JdepsArgs(analyse)) + " > " + meta + "/" + jdepsFile + "\n")
	compiled := r.sh("javac and jdeps", srcDir, b.String()).AddMount(outDir, base)
	ref, err := r.solve(ctx, compiled)
	if err != nil {
		return llb.State{}, err
	}
	read := func(name string) (string, error) {
		b, err := ref.ReadFile(ctx, gatewayRead("/"+metaDir+"/"+name))
		return trimLine(b), err
	}
	home, err := read(jdkFile)
	if err != nil {
		return llb.State{}, err
	}
	deps, err := read(jdepsFile)
	if err != nil {
		return llb.State{}, err
	}
	mods := compile.JavaModules(deps, os.Getenv(compile.JavaModulesEnv))
	// No class-data-sharing archive (compile.JavaCDSArgs): a JDK before
	// 19 does not dump the same bytes twice, and an image built on
	// another buildkitd is the same image.
	jlink := shArgs(append([]string{path.Join(home, "bin", "jlink")}, compile.JlinkArgs(mods, outRootfs+compile.JavaRuntime)...))
	return r.sh("jlink", srcDir, jlink+"\n").AddMount(outDir, compiled), nil
}

func (javaLang) Finish(ctx context.Context, f *finish) (compile.Launch, error) {
	env, err := compile.Closure(f.rootfs, f.from, compile.JavaRuntime)
	if err != nil {
		return compile.Launch{}, err
	}
	return compile.JavaLaunch(f.app, env, compile.JavaRuntimeVersion(f.rootfs))
}

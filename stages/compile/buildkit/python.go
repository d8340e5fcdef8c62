package buildkit

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/stages/compile"
)

// pythonLang packs the builder image's python3 as the local executor packs
// the host's (python.go of stages/compile): a first step asks the
// interpreter where it lives (the same script); its binary and its
// standard library, without the same parts, are copied from the image;
// the source goes to /app, requirements.txt is installed with pip into
// /app/.python-packages, and everything is compiled to hash-based byte
// code with the same arguments.
type pythonLang struct{}

func (pythonLang) DefaultImage(ctx context.Context) string { return pythonImage(ctx) }

const pythonInfoFile = "python.json"

func (pythonLang) Build(ctx context.Context, r *recipe) (llb.State, error) {
	if _, err := compile.PythonMain(r.app); err != nil {
		return llb.State{}, &recipeError{err}
	}
	ask := r.sh("python3 (where is it)", srcDir,
		need("python3", "the interpreter")+"python3 -I -c "+q(compile.PythonInfoScript)+" > "+outDir+"/"+metaDir+"/"+pythonInfoFile+"\n")
	asked := ask.AddMount(outDir, emptyOut())
	b, err := r.read(ctx, asked, "/"+metaDir+"/"+pythonInfoFile)
	if err != nil {
		return llb.State{}, err
	}
	info, err := compile.ParsePythonInfo(b)
	if err != nil {
		return llb.State{}, &recipeError{err}
	}
	root := "/" + compile.RootfsDir
	st := asked.File(llb.Copy(r.builder, info.Exe, root+info.Exe, &llb.CopyInfo{CreateDestPath: true}),
		llb.WithCustomNamef("[%s] the interpreter %s", r.app.Name, info.Exe))
	for _, lib := range info.Libs() {
		st = st.File(llb.Copy(r.builder, lib, root+lib, &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true, ExcludePatterns: compile.PythonSkipPatterns()}),
			llb.WithCustomNamef("[%s] the standard library %s", r.app.Name, lib))
	}
	st = st.File(llb.Copy(r.src, "/", root+compile.AppDir, &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}),
		llb.WithCustomNamef("[%s] the source into %s", r.app.Name, compile.AppDir))
	var script strings.Builder
	if compile.FileHasContent(filepath.Join(r.app.Source, "requirements.txt")) {
		script.WriteString(shArgs(append([]string{info.Exe}, compile.PipInstallArgs(outRootfs+compile.PythonPackages, srcDir+"/requirements.txt")...)) + "\n")
	}
	dirs := []string{outRootfs + compile.AppDir}
	for _, lib := range info.Libs() {
		dirs = append(dirs, outRootfs+lib)
	}
	script.WriteString(shArgs(append([]string{info.Exe}, compile.PythonCompileArgs(outRootfs, dirs)...)) + "\n")
	return r.sh("compileall", srcDir, script.String(), llb.AddEnv("PIP_ROOT_USER_ACTION", "ignore")).AddMount(outDir, st), nil
}

func (pythonLang) Finish(ctx context.Context, f *finish) (compile.Launch, error) {
	b, err := os.ReadFile(filepath.Join(f.meta, pythonInfoFile))
	if err != nil {
		return compile.Launch{}, err
	}
	info, err := compile.ParsePythonInfo(b)
	if err != nil {
		return compile.Launch{}, err
	}
	main, err := compile.PythonMain(f.app)
	if err != nil {
		return compile.Launch{}, err
	}
	packages := compile.FileHasContent(filepath.Join(f.app.Source, "requirements.txt"))
	more, err := compile.Closure(f.rootfs, f.from, compile.PythonRoots(info, packages)...)
	if err != nil {
		return compile.Launch{}, err
	}
	return compile.PythonLaunch(info, main, packages, more), nil
}

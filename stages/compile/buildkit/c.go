package buildkit

import (
	"context"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/unikfile/unikfile/stages/compile"
)

// jobs is the number of parallel jobs a build in the builder runs.
const jobs = `"$(nproc 2>/dev/null || echo 2)"`

// raw marks shell text that is not to be quoted among arguments.
const raw = "\x00raw:"

// shArgs quotes args for /bin/sh, except those marked raw.
func shArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, raw) {
			out[i] = strings.TrimPrefix(a, raw)
		} else {
			out[i] = q(a)
		}
	}
	return strings.Join(out, " ")
}

// need is shell that fails with a clear message when the builder image
// lacks program.
func need(program, what string) string {
	return "command -v " + q(program) + " >/dev/null || { echo " +
		q("the builder image has no "+program+" ("+what+"): use a builder image that has it, set with builder = \"IMAGE\" in the app block") +
		" >&2; exit 127; }\n"
}

const candDir = outDir + "/" + metaDir + "/cand"

// copyCandidates is shell that copies the executable files under the
// current folder that find's tests select into meta/cand, keeping their
// relative paths.
func copyCandidates(tests string) string {
	return "find . -type f -perm /111 " + tests + ` -exec sh -c 'mkdir -p "` + candDir + `/$(dirname "$1")" && cp "$1" "` + candDir + `/$1"' _ {} \;` + "\n"
}

// copyCandidate is shell that copies file p (relative to the current
// folder), if the build made it, into meta/cand.
func copyCandidate(p string) string {
	return "if [ -e " + q(p) + " ]; then mkdir -p " + q(path.Dir(path.Join(candDir, p))) +
		" && cp " + q(p) + " " + q(path.Join(candDir, p)) + "; fi\n"
}

// stripCandidates is shell that strips the files of meta/cand as the
// local executor strips its program; what is not an ELF file is left as
// it is.
func stripCandidates() string {
	strip := shArgs(append([]string{"strip"}, compile.StripArgs(raw+`"$1"`)...))
	return "mkdir -p " + candDir + " && cd " + candDir + " && find . -type f -exec sh -c " + q(strip+" 2>/dev/null || true") + " _ {} \\;\n"
}

// cLang compiles C and C++ as the local executor does (c.go of
// stages/compile): CMake, make or the listed sources (static), in a copy
// of the source at /work/src, with the builder image's compiler ($CC or
// $CXX, else gcc or g++) and flags ($CFLAGS, ...). The programs the build
// left are stripped in the builder and exported; unikfile picks the one
// to run, as locally.
type cLang struct{ cxx bool }

func (cLang) DefaultImage(ctx context.Context) string { return gccImage(ctx) }

func (c cLang) Build(ctx context.Context, r *recipe) (llb.State, error) {
	name, envVar := compile.CCompiler(c.cxx)
	cc := r.getenv(envVar, name)
	flags := compile.CFlags(workDir)
	src := workDir + "/src"
	var b strings.Builder
	b.WriteString(need(cc, "the "+compile.CLanguage(c.cxx)+" compiler"))
	b.WriteString(need("strip", "binutils"))
	b.WriteString("export CFLAGS=" + q(strings.TrimSpace(r.env["CFLAGS"]+" "+flags)) + "\n")
	b.WriteString("export CXXFLAGS=" + q(strings.TrimSpace(r.env["CXXFLAGS"]+" "+flags)) + "\n")
	var dir, step string // where the programs are looked for; the step's name
	main := r.app.Main
	switch compile.BuildSystem(r.app.Source) {
	case "cmake":
		out := workDir + "/build"
		b.WriteString(need("cmake", "CMake, for the source's CMakeLists.txt"))
		b.WriteString(need("make", "CMake's generator"))
		b.WriteString("cmake " + shArgs(compile.CMakeConfigureArgs(src, out, cc, c.cxx)) + "\n")
		b.WriteString("cmake " + shArgs(compile.CMakeBuildArgs(out, raw+jobs)) + "\n")
		dir, step = out, "cmake"
	case "make":
		b.WriteString(need("make", "for the source's Makefile"))
		b.WriteString("make " + shArgs(compile.MakeArgs(raw+jobs, cc, c.cxx)) + "\n")
		dir, step = src, "make"
	default:
		srcs, err := compile.CSources(r.app, c.cxx)
		if err != nil {
			return llb.State{}, &recipeError{err}
		}
		b.WriteString(shArgs(append([]string{cc}, compile.CStaticArgs(flags, workDir+"/main", srcs)...)) + "\n")
		dir, step, main = workDir, cc+" "+strings.Join(srcs, " "), "main"
	}
	b.WriteString("cd " + q(dir) + "\n")
	if main != "" && main != "." {
		b.WriteString(copyCandidate(path.Clean(main)))
	} else {
		b.WriteString(copyCandidates(`! -name '*.so' ! -name '*.so.*' ! -path '*CMakeFiles*'`))
	}
	b.WriteString(stripCandidates())
	work := llb.Scratch().File(llb.Copy(r.src, "/", "/src", &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}),
		llb.WithCustomNamef("[%s] writable copy of the source", r.app.Name))
	ex := r.sh(step, src, b.String(), llb.AddMount(workDir, work))
	return ex.AddMount(outDir, emptyOut()), nil
}

// Finish picks the program (the one the build made, or main), puts it at
// /app/main and gathers its libraries from the builder image.
func (c cLang) Finish(ctx context.Context, f *finish) (compile.Launch, error) {
	cand := filepath.Join(f.meta, "cand")
	var bin string
	if compile.BuildSystem(f.app.Source) == "" {
		bin = filepath.Join(cand, "main")
	} else {
		var err error
		if bin, err = compile.PickProgram(f.app, cand); err != nil {
			return compile.Launch{}, err
		}
	}
	if _, err := compile.PlaceProgram(bin, f.rootfs); err != nil {
		return compile.Launch{}, err
	}
	return compile.ProgramLaunch(f.rootfs, f.from)
}

package compile

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/lang"
)

const javaHint = "install a JDK: apt-get install openjdk-17-jdk-headless"

// javaRuntime is where the jlink'd runtime goes in the bundle.
const javaRuntime = "/opt/java"

// javaHeapMiB is the guest memory a JVM gets besides the image.
const javaHeapMiB = 192

// javaLang builds Java apps with the JDK whose javac is first in PATH:
// main = "app.jar" (a fat jar in the source) runs with java -jar; else
// every .java file of the source is compiled with javac into
// /app/classes and main names the main class ("Main" when unset). The
// runtime is a jlink'd image in /opt/java holding only the modules jdeps
// finds the app using (plus those in UNIKFILE_JAVA_MODULES, comma
// separated, for modules loaded by reflection), with its shared-library
// closure and a class-data-sharing archive the runtime dumps at build
// time (JavaCDSArgs).
type javaLang struct{}

// jdk finds the JDK of javac in PATH.
func jdk() (string, error) {
	javac, err := run.Look("javac", javaHint)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(javac)
	if err != nil {
		return "", err
	}
	home := filepath.Dir(filepath.Dir(real))
	for _, tool := range JDKTools {
		if _, err := os.Stat(filepath.Join(home, tool)); err != nil {
			return "", fmt.Errorf("the JDK at %s (of %s) has no %s, which a jlink'd runtime needs; %s", home, javac, tool, javaHint)
		}
	}
	return home, nil
}

func (javaLang) Toolchain(ctx context.Context, app *lang.App) (string, error) {
	home, err := jdk()
	if err != nil {
		return "", err
	}
	id, err := toolIdentity(ctx, filepath.Join(home, "bin", "javac"), javaHint, "-version")
	if err != nil {
		return "", err
	}
	rel, _ := os.ReadFile(filepath.Join(home, "release"))
	return fmt.Sprintf("%s; release %q; modules %q", id, rel, os.Getenv(JavaModulesEnv)), nil
}

func (javaLang) ExtraInputs(*lang.App) ([]string, error) { return nil, nil }

func javaJar(app *lang.App) bool { return strings.HasSuffix(app.Main, ".jar") }

func (javaLang) Program(app *lang.App) string {
	if javaJar(app) {
		return path.Join(AppDir, path.Clean("/"+app.Main))
	}
	return javaRuntime + "/bin/java"
}

func (javaLang) Build(ctx context.Context, app *lang.App, rootfs string, log io.Writer) (Launch, error) {
	home, err := jdk()
	if err != nil {
		return Launch{}, err
	}
	tool := func(name string) string { return filepath.Join(home, "bin", name) }
	fail := func(what string, err error) (Launch, error) {
		return Launch{}, fmt.Errorf("app %s: %s failed:\n%s", app.Name, what, compilerOutput(err))
	}
	var analyse string
	if javaJar(app) {
		rel, err := JavaJarFile(app)
		if err != nil {
			return Launch{}, err
		}
		if err := copySource(app.Source, rootfs); err != nil {
			return Launch{}, err
		}
		analyse = filepath.Join(rootfs, "app", filepath.FromSlash(rel))
	} else {
		srcs, err := JavaSources(app)
		if err != nil {
			return Launch{}, err
		}
		classes := filepath.Join(rootfs, "app", "classes")
		if _, err := run.Run(ctx, run.Cmd{Path: tool("javac"), Args: JavacArgs(classes, srcs), Dir: app.Source, Stdout: log, Stderr: log, Hint: javaHint}); err != nil {
			return fail("javac", err)
		}
		analyse = classes
	}
	res, err := run.Run(ctx, run.Cmd{Path: tool("jdeps"), Args: JdepsArgs(analyse), Hint: javaHint})
	if err != nil {
		return fail("jdeps", err)
	}
	out := filepath.Join(rootfs, filepath.FromSlash(javaRuntime))
	if _, err := run.Run(ctx, run.Cmd{
		Path:   tool("jlink"),
		Args:   JlinkArgs(JavaModules(string(res.Stdout), os.Getenv(JavaModulesEnv)), out),
		Stdout: log, Stderr: log, Hint: javaHint,
	}); err != nil {
		return fail("jlink", err)
	}
	// The runtime's class-data-sharing archive, dumped by the runtime
	// itself. A JVM without CDS (a build that cannot dump) starts
	// without it, as before.
	if _, err := run.Run(ctx, run.Cmd{Path: filepath.Join(out, "bin", "java"), Args: JavaCDSArgs, Stdout: log, Stderr: log, Hint: javaHint}); err != nil {
		fmt.Fprintf(log, "app %s: no class-data-sharing archive, the JVM starts without one: %s\n", app.Name, compilerOutput(err))
	}
	env, err := closure(app, rootfs, javaRuntime)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return JavaLaunch(app, env, JavaRuntimeVersion(rootfs))
}

// JavaRuntime is where the jlink'd runtime goes in the bundle.
const JavaRuntime = javaRuntime

// JavaModulesEnv names the environment variable listing modules to add to
// those jdeps finds (comma separated), for modules loaded by reflection.
const JavaModulesEnv = "UNIKFILE_JAVA_MODULES"

// JDKTools are the files of a JDK that a jlink'd runtime needs, relative
// to the JDK's home.
var JDKTools = []string{"bin/jlink", "bin/jdeps", "jmods/java.base.jmod"}

// JavaJar reports whether app runs a jar of its source (main = "x.jar").
func JavaJar(app *lang.App) bool { return javaJar(app) }

// JavaJarFile is the jar to run, relative to the source.
func JavaJarFile(app *lang.App) (string, error) {
	rel, err := mainFile(app)
	if err != nil {
		return "", fmt.Errorf("app %s: %w", app.Name, err)
	}
	return rel, nil
}

// JavaSources lists the .java files of app's source, or says there are
// none.
func JavaSources(app *lang.App) ([]string, error) {
	srcs, err := javaSources(app.Source)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("app %s: no .java files in %s, and main is not a .jar", app.Name, app.Source)
	}
	return srcs, nil
}

// JavacArgs compile srcs (relative to the source, which is the working
// folder) into classes.
func JavacArgs(classes string, srcs []string) []string {
	return append([]string{"-encoding", "UTF-8", "-d", classes}, srcs...)
}

// JdepsArgs print the modules the classes (or jar) at analyse use.
func JdepsArgs(analyse string) []string {
	return []string{"--print-module-deps", "--ignore-missing-deps", "--multi-release", "base", analyse}
}

// JavaModules are the modules of the runtime, sorted: java.base, those
// jdeps printed (comma separated) and those of extra (comma separated).
func JavaModules(jdeps, extra string) []string {
	mods := map[string]bool{"java.base": true}
	for _, m := range append(strings.Split(strings.TrimSpace(jdeps), ","), strings.Split(extra, ",")...) {
		if m = strings.TrimSpace(m); m != "" {
			mods[m] = true
		}
	}
	var list []string
	for m := range mods {
		list = append(list, m)
	}
	sort.Strings(list)
	return list
}

// JlinkArgs make a runtime of mods in out.
func JlinkArgs(mods []string, out string) []string {
	return []string{"--add-modules", strings.Join(mods, ","), "--strip-debug", "--no-man-pages", "--no-header-files",
		"--compress=2", "--output", out}
}

// JavaCDSArgs make the jlink'd runtime's java (run on the build machine)
// dump its default class-data-sharing archive, lib/server/classes.jsa:
// the classes of the JDK's own class list (those every JVM loads to
// start, in the runtime's modules) parsed, verified and laid out as the
// JVM keeps them in memory. A JVM maps the archive instead of reading,
// inflating (jlink's --compress=2), parsing and verifying each class:
// under TCG that halves the instructions Java runs to its port (431 to
// 201 million for examples/java). jlink'd runtimes have no archive of
// their own. With JDK 17 two dumps of the same runtime are not the same
// bytes (the JVM's own threads race while it dumps; JDK 19 made the dump
// deterministic), so a Java bundle built afresh differs from the last in
// that file; the compile cache is keyed by the inputs, so a cached build
// is reused as it is. The BuildKit executor, whose images are the same
// on every buildkitd, does not dump one.
var JavaCDSArgs = []string{"-Xshare:dump"}

// JavaRuntimeVersion is the feature version of the jlink'd runtime in
// rootfs (17 for JAVA_VERSION="17.0.15" in its release file; 8 for
// "1.8.0_x"), 0 when the file does not say.
func JavaRuntimeVersion(rootfs string) int {
	b, err := os.ReadFile(filepath.Join(rootfs, filepath.FromSlash(javaRuntime), "release"))
	if err != nil {
		return 0
	}
	return ParseJavaVersion(string(b))
}

// ParseJavaVersion reads JAVA_VERSION of a JDK's release file.
func ParseJavaVersion(release string) int {
	for _, line := range strings.Split(release, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "JAVA_VERSION=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		v = strings.TrimPrefix(v, "1.")
		n := 0
		for _, c := range v {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	return 0
}

// JavaLaunch starts app on the jlink'd runtime; env is the closure's,
// version the runtime's (JavaRuntimeVersion; 0 unknown).
func JavaLaunch(app *lang.App, env []string, version int) (Launch, error) {
	var appArgs []string
	if javaJar(app) {
		rel, err := JavaJarFile(app)
		if err != nil {
			return Launch{}, err
		}
		appArgs = []string{"-jar", path.Join(AppDir, rel)}
	} else {
		mainClass := app.Main
		if mainClass == "" || mainClass == "." {
			mainClass = "Main"
		}
		appArgs = []string{"-cp", AppDir + "/classes", mainClass}
	}
	// The serial GC and the C1 compiler alone start fastest on one or two
	// emulated CPUs.
	argv := []string{javaRuntime + "/bin/java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}
	if version >= 14 {
		// The CDS archive mapped where it was dumped to be: by default
		// JDK 17's JVM maps it at a random address and then rewrites
		// every pointer in it, 30 million guest instructions
		// of examples/java's start. The mapping is the same in every
		// boot of an image (the guest runs one app; its other memory
		// stays randomized); a JVM that finds the address taken
		// relocates as by default.
		argv = append(argv, "-XX:+UnlockDiagnosticVMOptions", "-XX:ArchiveRelocationMode=0")
	}
	argv = append(argv, appArgs...)
	return Launch{Argv: argv, Env: append(env, "JAVA_HOME="+javaRuntime), Dir: AppDir, MemoryMiB: javaHeapMiB,
		EmulatedEnv: []string{JavaEmulatedOptions}}, nil
}

// JavaEmulatedOptions is what a JVM runs with when the guest's CPU is
// emulated (QEMU's TCG; guest.Config.EmulatedEnv): it compiles a method
// only after a hundred times the invocations and loops it otherwise
// would. Under emulation every method the JIT compiles is compiled twice,
// by C1 and then by the emulator translating C1's output, and new code
// invalidates translations: examples/java answered its first request
// 25-40% sooner (7.66 s to 4.59 s with the JIT off, 9.79 s to 6.91 s
// with this, interleaved boots) while what stays hot is still compiled.
// On hardware (KVM) it is left out: there the JIT pays for itself at
// once (the first 300 requests took 170 ms with it, 245 ms with this).
// The launcher reads JDK_JAVA_OPTIONS (and says so on the console), so
// the app's own env can set it instead.
const JavaEmulatedOptions = "JDK_JAVA_OPTIONS=-XX:CompileThresholdScaling=100"

// javaSources lists the .java files of the source, relative, sorted.
func javaSources(dir string) ([]string, error) {
	m, err := loadIgnore(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." && m.Match(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".java") {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

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
// closure.
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
	for _, tool := range []string{"bin/jlink", "bin/jdeps", "jmods/java.base.jmod"} {
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
	return fmt.Sprintf("%s; release %q; modules %q", id, rel, os.Getenv("UNIKFILE_JAVA_MODULES")), nil
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
	var appArgs []string
	var analyse string
	if javaJar(app) {
		rel, err := mainFile(app)
		if err != nil {
			return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
		}
		if err := copySource(app.Source, rootfs); err != nil {
			return Launch{}, err
		}
		analyse = filepath.Join(rootfs, "app", filepath.FromSlash(rel))
		appArgs = []string{"-jar", path.Join(AppDir, rel)}
	} else {
		srcs, err := javaSources(app.Source)
		if err != nil {
			return Launch{}, err
		}
		if len(srcs) == 0 {
			return Launch{}, fmt.Errorf("app %s: no .java files in %s, and main is not a .jar", app.Name, app.Source)
		}
		classes := filepath.Join(rootfs, "app", "classes")
		args := append([]string{"-encoding", "UTF-8", "-d", classes}, srcs...)
		if _, err := run.Run(ctx, run.Cmd{Path: tool("javac"), Args: args, Dir: app.Source, Stdout: log, Stderr: log, Hint: javaHint}); err != nil {
			return fail("javac", err)
		}
		mainClass := app.Main
		if mainClass == "" || mainClass == "." {
			mainClass = "Main"
		}
		analyse = classes
		appArgs = []string{"-cp", AppDir + "/classes", mainClass}
	}
	res, err := run.Run(ctx, run.Cmd{Path: tool("jdeps"), Args: []string{"--print-module-deps", "--ignore-missing-deps", "--multi-release", "base", analyse}, Hint: javaHint})
	if err != nil {
		return fail("jdeps", err)
	}
	mods := map[string]bool{"java.base": true}
	extra := strings.Split(os.Getenv("UNIKFILE_JAVA_MODULES"), ",")
	for _, m := range append(strings.Split(strings.TrimSpace(string(res.Stdout)), ","), extra...) {
		if m = strings.TrimSpace(m); m != "" {
			mods[m] = true
		}
	}
	var list []string
	for m := range mods {
		list = append(list, m)
	}
	sort.Strings(list)
	out := filepath.Join(rootfs, filepath.FromSlash(javaRuntime))
	if _, err := run.Run(ctx, run.Cmd{
		Path: tool("jlink"),
		Args: []string{"--add-modules", strings.Join(list, ","), "--strip-debug", "--no-man-pages", "--no-header-files",
			"--compress=2", "--output", out},
		Stdout: log, Stderr: log, Hint: javaHint,
	}); err != nil {
		return fail("jlink", err)
	}
	env, err := closure(app, rootfs, javaRuntime)
	if err != nil {
		return Launch{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	// The serial GC and the C1 compiler alone start fastest on one or two
	// emulated CPUs.
	argv := append([]string{javaRuntime + "/bin/java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}, appArgs...)
	return Launch{Argv: argv, Env: append(env, "JAVA_HOME="+javaRuntime), Dir: AppDir, MemoryMiB: javaHeapMiB}, nil
}

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

package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mirageTarball is the MirageOS fixture's toolchain (BUILD.md there).
const mirageTarball = "mirage-toolchain.tar.zst"

// MirageToolchain returns the MirageOS toolchain of the mirage fixture (a
// folder with one prefix per Solo5 target, virtio/ and spt/), extracted
// once per machine into the user's cache folder under the tarball's
// digest, or skips t when the fixture, the Debian packages it was built
// against, or zstd are missing.
func MirageToolchain(t testing.TB) string {
	t.Helper()
	fix := Fixture(t, "mirage")
	if why := mirageMissing(fix); why != "" {
		t.Skip(why)
	}
	dir, err := extractMirage(fix)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// MirageFixtureApp returns the source folder of one of the fixture's
// example apps (hello, tcp-echo).
func MirageFixtureApp(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(Fixture(t, "mirage"), "app", name)
	if _, err := os.Stat(filepath.Join(dir, "config.ml")); err != nil {
		t.Skipf("the mirage fixture has no app %s: %v", name, err)
	}
	return dir
}

// mirageMissing says what the fixture's toolchain needs and this machine
// lacks: the Debian packages of its apt-packages.txt (OCaml 4.13.1 and the
// libraries it was compiled against) and zstd to unpack it.
func mirageMissing(fix string) string {
	if _, err := exec.LookPath("zstd"); err != nil {
		return "the mirage fixture's toolchain is a .tar.zst and zstd is missing: run scripts/install-deps --test (apt-get install zstd)"
	}
	b, err := os.ReadFile(filepath.Join(fix, "apt-packages.txt"))
	if err != nil {
		return fmt.Sprintf("the mirage fixture has no apt-packages.txt: %v", err)
	}
	pkgs := strings.Fields(string(b))
	out, _ := exec.Command("dpkg-query", append([]string{"-W", "-f", "${db:Status-Abbrev} ${Package}\n"}, pkgs...)...).Output()
	installed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.HasPrefix(f[0], "ii") {
			installed[strings.SplitN(f[1], ":", 2)[0]] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("the mirage fixture's toolchain needs Debian's OCaml packages, and %s are not installed: run scripts/install-deps --test", strings.Join(missing, ", "))
	}
	return ""
}

// extractMirage unpacks the toolchain into the cache folder named by the
// tarball's digest (from the fixture's SHA256SUMS), unless an earlier run
// did: into a temporary folder beside it, renamed into place, so that
// concurrent test processes never see half a toolchain.
func extractMirage(fix string) (string, error) {
	digest, err := fixtureDigest(fix, mirageTarball)
	if err != nil {
		return "", err
	}
	cacheRoot, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(cacheRoot, "unikfile-tests", "mirage-"+digest[:16])
	dir := filepath.Join(root, "mirage-toolchain")
	if _, err := os.Stat(filepath.Join(dir, "env.sh")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".mirage-partial-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("sh", "-c", `zstd -dc "$1" | tar -xf - -C "$2"`, "sh", filepath.Join(fix, mirageTarball), tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("unpack %s: %v\n%s", mirageTarball, err, out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "mirage-toolchain", "env.sh")); err != nil {
		return "", fmt.Errorf("%s holds no mirage-toolchain/env.sh: %v", mirageTarball, err)
	}
	if err := os.Rename(tmp, root); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "env.sh")); serr == nil {
			return dir, nil // another process was first
		}
		return "", err
	}
	return dir, nil
}

// fixtureDigest is the sha256 the fixture's SHA256SUMS gives for file.
func fixtureDigest(fix, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(fix, "SHA256SUMS"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && strings.TrimPrefix(f[1], "*") == file && len(f[0]) == 64 {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("%s lists no %s", filepath.Join(fix, "SHA256SUMS"), file)
}

package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// FixturesEnv is the environment variable that holds the folder of the
// unikernel fixtures: an OSv kernel, Rumprun and MirageOS toolchains and an
// IncludeOS SDK built from their sources, each in a subfolder with its
// BUILD.md. scripts/test sets it when the folder is there; a user's clone
// has none, and the tests that need one skip.
const FixturesEnv = "UNIKFILE_FIXTURES"

// Fixture returns the absolute path of the fixture folder name (osv,
// rumprun, mirage, includeos), or skips t, saying which variable to set.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	root := os.Getenv(FixturesEnv)
	if root == "" {
		t.Skipf("needs the %s fixture: %s is not set (scripts/test sets it to ../shared/fixtures when that folder exists)", name, FixturesEnv)
	}
	dir, err := filepath.Abs(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("needs the %s fixture: %s=%s has no folder %s", name, FixturesEnv, root, name)
	}
	return dir
}

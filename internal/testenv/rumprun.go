package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// RumprunToolchain returns the folder of a Rumprun toolchain made from the
// rumprun fixture (ExtractRumprun), or skips t when the fixture is absent.
func RumprunToolchain(t testing.TB) string {
	t.Helper()
	dir, err := ExtractRumprun(Fixture(t, "rumprun"), "")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// ExtractRumprun unpacks the rumprun fixture's toolchain archive
// (rumprun-inst.tar.zst, packed at /opt/rumprun) into a folder of the
// machine's cache named after the fixture's checksums, and relocates it
// there with the fixture's relocate.sh, once: later calls, from any
// process, find it. cacheRoot "" means $UNIKFILE_CACHE_DIR, else the
// user's cache folder's unikfile. It unpacks as FixtureArchive does, but
// in place: relocate.sh rewrites the tree for the folder it is in, so it
// cannot be renamed into place afterwards. It returns the
// toolchain folder (the one with bin/rumprun-bake).
func ExtractRumprun(fixture, cacheRoot string) (string, error) {
	if cacheRoot == "" {
		cacheRoot = os.Getenv("UNIKFILE_CACHE_DIR")
	}
	if cacheRoot == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		cacheRoot = filepath.Join(c, "unikfile")
	}
	sums, err := os.ReadFile(filepath.Join(fixture, "SHA256SUMS"))
	if err != nil {
		return "", fmt.Errorf("rumprun fixture: %w", err)
	}
	h := sha256.Sum256(sums)
	base := filepath.Join(cacheRoot, "test-fixtures", "rumprun-"+hex.EncodeToString(h[:])[:12])
	tree := filepath.Join(base, "rumprun")
	done := filepath.Join(base, ".complete")
	if _, err := os.Stat(done); err == nil {
		return tree, nil
	}
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(base+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(done); err == nil {
		return tree, nil // another process made it meanwhile
	}
	// What an interrupted extraction left is not trusted.
	if err := os.RemoveAll(base); err != nil {
		return "", err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	fail := func(what string, err error, out []byte) (string, error) {
		_ = os.RemoveAll(base)
		return "", fmt.Errorf("rumprun fixture: %s: %v\n%s", what, err, out)
	}
	archive := filepath.Join(fixture, "rumprun-inst.tar.zst")
	if err := untarZstd(archive, base); err != nil {
		return fail("extract "+archive, err, nil)
	}
	if out, err := exec.Command("sh", filepath.Join(fixture, "relocate.sh"), tree).CombinedOutput(); err != nil {
		return fail("relocate.sh", err, out)
	}
	if err := os.WriteFile(done, []byte(archive+"\n"), 0o644); err != nil {
		return fail("mark complete", err, nil)
	}
	return tree, nil
}

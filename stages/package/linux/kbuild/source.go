package kbuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
)

// SourcePackage is the Debian package the kernels are built from: the
// kernel source of Debian 12, with Debian's patches applied.
const SourcePackage = "linux-source-6.1"

const aptHint = "the kernel source comes from Debian's archive through apt (" + SourcePackage + "); on other systems set linux { kernel = \"/path/to/vmlinuz\" } instead of \"minimal\""

// Source is an extracted kernel source tree.
type Source struct {
	// Version is the Debian package version, e.g. 6.1.192-3.
	Version string
	// Dir is the tree (its top-level Makefile is Dir/Makefile).
	Dir string
}

// Package is how messages name the source: "linux-source-6.1 6.1.192-3".
func (s *Source) Package() string { return SourcePackage + " " + s.Version }

func srcRoot(root string) string { return filepath.Join(root, "src") }

// LatestSource returns the newest source tree extracted under root, or
// nil when there is none.
func LatestSource(root string) (*Source, error) {
	ents, err := os.ReadDir(srcRoot(root))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, e := range ents {
		// A complete tree has its Makefile (a symbolic link to a tree
		// elsewhere counts too).
		if !strings.HasPrefix(e.Name(), ".") {
			if _, err := os.Stat(filepath.Join(srcRoot(root), e.Name(), "Makefile")); err == nil {
				versions = append(versions, e.Name())
			}
		}
	}
	if len(versions) == 0 {
		return nil, nil
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[j], versions[i]) })
	return &Source{Version: versions[0], Dir: filepath.Join(srcRoot(root), versions[0])}, nil
}

// CandidateVersion asks apt which version of SourcePackage it would
// download.
func CandidateVersion(ctx context.Context) (string, error) {
	res, err := run.Run(ctx, run.Cmd{Path: "apt-cache", Args: []string{"policy", SourcePackage}, Hint: aptHint})
	if err != nil {
		return "", fmt.Errorf("ask apt for %s: %w", SourcePackage, err)
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v != "" && v != "(none)" {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("apt knows no version of %s; run `apt-get update` (Debian 12's archive has it), or set linux { kernel = \"/path/to/vmlinuz\" }", SourcePackage)
}

// FetchSource makes sure apt's candidate version of SourcePackage is
// extracted under root: it downloads the package with `apt-get download`
// (apt checks it against the archive's signed index) and unpacks its
// tarball into root/src/<version>, in whole or not at all. Nothing is
// installed on the system. say receives progress lines.
func FetchSource(ctx context.Context, root string, say func(string)) (*Source, error) {
	version, err := CandidateVersion(ctx)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(srcRoot(root), version)
	if _, err := os.Stat(filepath.Join(dest, "Makefile")); err == nil {
		return &Source{Version: version, Dir: dest}, nil
	}
	tmpRoot := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(tmpRoot, fmt.Sprintf("%d-src-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	say(fmt.Sprintf("downloading %s %s (about 140 MB) with apt-get download", SourcePackage, version))
	if _, err := run.Run(ctx, run.Cmd{Path: "apt-get", Args: []string{"download", SourcePackage + "=" + version}, Dir: tmp, Hint: aptHint}); err != nil {
		return nil, fmt.Errorf("download %s: %w", SourcePackage, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("download %s: expected one .deb in %s, found %d", SourcePackage, tmp, len(debs))
	}
	x := filepath.Join(tmp, "x")
	if _, err := run.Run(ctx, run.Cmd{Path: "dpkg-deb", Args: []string{"-x", debs[0], x}, Hint: aptHint}); err != nil {
		return nil, fmt.Errorf("extract %s: %w", filepath.Base(debs[0]), err)
	}
	tarballs, _ := filepath.Glob(filepath.Join(x, "usr", "src", "linux-source-*.tar.*"))
	if len(tarballs) != 1 {
		return nil, fmt.Errorf("%s holds %d source tarballs in /usr/src, expected one", filepath.Base(debs[0]), len(tarballs))
	}
	say(fmt.Sprintf("unpacking %s", filepath.Base(tarballs[0])))
	tree := filepath.Join(tmp, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		return nil, err
	}
	if _, err := run.Run(ctx, run.Cmd{Path: "tar", Args: []string{"-xf", tarballs[0], "-C", tree}, Hint: "install tar and xz-utils: apt-get install tar xz-utils"}); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", filepath.Base(tarballs[0]), err)
	}
	tops, _ := filepath.Glob(filepath.Join(tree, "*", "Makefile"))
	if len(tops) != 1 {
		return nil, fmt.Errorf("%s holds %d top-level source trees, expected one", filepath.Base(tarballs[0]), len(tops))
	}
	if err := os.MkdirAll(srcRoot(root), 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Dir(tops[0]), dest); err != nil {
		if _, serr := os.Stat(filepath.Join(dest, "Makefile")); serr == nil {
			return &Source{Version: version, Dir: dest}, nil // another process was faster
		}
		return nil, err
	}
	say(fmt.Sprintf("%s %s is in %s", SourcePackage, version, dest))
	return &Source{Version: version, Dir: dest}, nil
}

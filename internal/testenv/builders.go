package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Offline builder images for the languages BuildKit compiles, made the way
// a user without Docker Hub would make them: a Debian rootfs written by
// mmdebstrap from the Debian archive, imported into a registry, and the
// toolchain installed from Debian's packages by a RUN step. They are made
// once per machine (BuildersDir) and served read-only by each test's own
// registry.

// BuildersEnv overrides BuildersDir.
const BuildersEnv = "UNIKFILE_TEST_BUILDERS"

// debianSuite is the Debian release of the images: the release of the
// machines the tests run on, so that toolchains match the host's.
const debianSuite = "bookworm"

var debianMirrors = []string{
	"deb http://deb.debian.org/debian bookworm main",
	"deb http://deb.debian.org/debian bookworm-updates main",
	"deb http://deb.debian.org/debian-security bookworm-security main",
}

// builderRecipe is one builder image: the Debian packages its RUN step
// installs, and those whose versions it records.
type builderRecipe struct {
	packages []string
	record   []string
}

// builderRecipes, by the name of the image (C and C++ share "c").
var builderRecipes = map[string]builderRecipe{
	"c":      {packages: []string{"gcc", "g++", "make", "cmake", "libc6-dev", "binutils"}, record: CToolchainPackages},
	"rust":   {packages: []string{"cargo", "rustc", "gcc", "libc6-dev", "binutils"}, record: []string{"rustc", "cargo"}},
	"python": {packages: []string{"python3"}, record: []string{"python3.11"}},
	"node":   {packages: []string{"nodejs", "npm"}, record: []string{"nodejs", "npm"}},
	"java":   {packages: []string{"openjdk-17-jdk-headless", "binutils"}, record: []string{"openjdk-17-jdk-headless"}},
}

// CToolchainPackages are the Debian packages whose versions decide a
// static C program's bytes.
var CToolchainPackages = []string{"gcc-12", "cpp-12", "libgcc-12-dev", "libc6-dev", "binutils", "binutils-x86-64-linux-gnu"}

// BuilderFor is the builder image's name for a language.
func BuilderFor(language string) string {
	if language == "cpp" {
		return "c"
	}
	return language
}

// recipeTag is the tag of an image: a digest of everything that makes it.
func recipeTag(name string) string {
	r := builderRecipes[name]
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%v\n%v\n%s\n%s\n", debianSuite, debianMirrors, r.packages, strings.Join(r.record, " "), installScript(r))
	return debianSuite + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

func installScript(r builderRecipe) string {
	return "set -e\nexport DEBIAN_FRONTEND=noninteractive\napt-get update -qq\n" +
		"apt-get install -y -qq --no-install-recommends " + strings.Join(r.packages, " ") + " >/dev/null\n" +
		"dpkg-query -W -f '${Package}=${Version}\\n' " + strings.Join(r.record, " ") + " > /unikfile-versions\n" +
		"rm -rf /var/lib/apt/lists/*\n"
}

// Builder is an offline builder image.
type Builder struct {
	Ref string // in the Builders' registry
	// Versions are the recorded packages' versions, "pkg=version" lines.
	Versions string
}

// Builders serves the offline builder images.
type Builders struct {
	*Registry
	Images map[string]Builder // by BuilderFor name
}

// For is the builder image of language.
func (b *Builders) For(language string) Builder { return b.Images[BuilderFor(language)] }

// BuildersDir is where the images are kept on this machine:
// $UNIKFILE_TEST_BUILDERS, else unikfile-test-builders in the user's cache
// folder.
func BuildersDir() (string, error) {
	if d := os.Getenv(BuildersEnv); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "unikfile", "test-builders"), nil
}

// MissingBuilders says why the builder images cannot be made here ("" when
// they can).
func MissingBuilders() string {
	if m := Missing(); m != "" {
		return m
	}
	dir, err := BuildersDir()
	if err == nil {
		if _, err := os.Stat(filepath.Join(dir, manifestName)); err == nil {
			return ""
		}
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "mmdebstrap is missing (it makes the tests' offline builder images from the Debian archive): run scripts/install-deps --test (apt-get install mmdebstrap)"
	}
	return ""
}

const manifestName = "builders.json"

// StartBuilders makes the builder images with buildkitd at bkAddr if this
// machine does not have them yet (one process at a time; a first run
// downloads the toolchains from the Debian archive), then starts a
// read-only registry serving them with its configuration in dir.
func StartBuilders(ctx context.Context, bkAddr, dir string) (*Builders, error) {
	root, err := BuildersDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	lock := flock.New(filepath.Join(root, "lock"))
	if err := lock.Lock(); err != nil {
		return nil, err
	}
	images, err := readBuilders(root)
	if err != nil {
		images, err = makeBuilders(ctx, bkAddr, root, dir)
	}
	lock.Unlock()
	if err != nil {
		return nil, fmt.Errorf("make the offline builder images in %s: %w", root, err)
	}
	reg, err := startRegistry(dir, filepath.Join(root, "registry"), true)
	if err != nil {
		return nil, err
	}
	b := &Builders{Registry: reg, Images: map[string]Builder{}}
	for name, img := range images {
		b.Images[name] = Builder{Ref: reg.Addr + "/" + img.Ref, Versions: img.Versions}
	}
	return b, nil
}

// readBuilders reads the images recorded in root, when they are those the
// recipes make.
func readBuilders(root string) (map[string]Builder, error) {
	b, err := os.ReadFile(filepath.Join(root, manifestName))
	if err != nil {
		return nil, err
	}
	var images map[string]Builder
	if err := json.Unmarshal(b, &images); err != nil {
		return nil, err
	}
	for name := range builderRecipes {
		if images[name].Ref != "unikfile-test/"+name+":"+recipeTag(name) {
			return nil, fmt.Errorf("builder %s is out of date", name)
		}
	}
	return images, nil
}

func makeBuilders(ctx context.Context, bkAddr, root, dir string) (map[string]Builder, error) {
	reg, err := startRegistry(dir, filepath.Join(root, "registry"), false)
	if err != nil {
		return nil, err
	}
	defer reg.Stop()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	base := "unikfile-test/debian:" + debianSuite
	if !hasManifest(reg.Addr, "unikfile-test/debian", debianSuite) {
		tarball := filepath.Join(dir, "rootfs.tar")
		args := append([]string{"--variant=minbase", "--quiet", debianSuite, tarball}, debianMirrors...)
		if out, err := exec.CommandContext(ctx, "mmdebstrap", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("mmdebstrap %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		_, err := PushRootfs(reg.Addr, "unikfile-test/debian", debianSuite, tarball, debianConfig())
		os.Remove(tarball)
		if err != nil {
			return nil, fmt.Errorf("import the Debian rootfs: %w", err)
		}
	}
	c, err := client.New(ctx, bkAddr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	images := map[string]Builder{}
	var names []string
	for name := range builderRecipes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ref := "unikfile-test/" + name + ":" + recipeTag(name)
		var versions string
		if hasManifest(reg.Addr, "unikfile-test/"+name, recipeTag(name)) {
			versions, err = readVersions(ctx, c, reg.Addr+"/"+ref) // pushed by a run that stopped before the end
		} else {
			versions, err = buildBuilder(ctx, c, reg.Addr+"/"+base, reg.Addr+"/"+ref, builderRecipes[name])
		}
		if err != nil {
			return nil, fmt.Errorf("builder %s: %w", name, err)
		}
		images[name] = Builder{Ref: ref, Versions: versions}
	}
	b, _ := json.MarshalIndent(images, "", "  ")
	tmp := filepath.Join(root, manifestName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return nil, err
	}
	return images, os.Rename(tmp, filepath.Join(root, manifestName))
}

func debianConfig() ocispecs.ImageConfig {
	return ocispecs.ImageConfig{
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:        []string{"/bin/bash"},
		WorkingDir: "/",
	}
}

// buildBuilder runs the recipe's RUN step on base, pushes the result as
// ref, and returns the versions it recorded.
func buildBuilder(ctx context.Context, c *client.Client, base, ref string, r builderRecipe) (string, error) {
	st := llb.Image(base, llb.Platform(amd64)).Run(
		llb.Args([]string{"/bin/sh", "-c", installScript(r)}),
		llb.AddEnv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
		llb.AddMount("/var/cache/apt/archives", llb.Scratch(), llb.AsPersistentCacheDir("unikfile-test-apt", llb.CacheMountLocked)),
		llb.WithCustomNamef("apt-get install %s", strings.Join(r.packages, " ")),
	).Root()
	def, err := st.Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		return "", err
	}
	cfg, _ := json.Marshal(ocispecs.Image{
		Platform: amd64,
		Config:   debianConfig(),
		RootFS:   ocispecs.RootFS{Type: "layers"},
	})
	var versions string
	opt := client.SolveOpt{Exports: []client.ExportEntry{{Type: client.ExporterImage, Attrs: map[string]string{
		"name": ref, "push": "true", "registry.insecure": "true",
	}}}}
	_, err = c.Build(ctx, opt, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		res, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		r, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		v, err := r.ReadFile(ctx, gateway.ReadRequest{Filename: "/unikfile-versions"})
		if err != nil {
			return nil, err
		}
		versions = string(v)
		out := gateway.NewResult()
		out.SetRef(r)
		out.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		return out, nil
	}, nil)
	if err != nil {
		return "", err
	}
	if versions == "" {
		return "", errors.New("the RUN step recorded no versions")
	}
	return versions, nil
}

// readVersions reads the versions an image's RUN step recorded.
func readVersions(ctx context.Context, c *client.Client, ref string) (string, error) {
	def, err := llb.Image(ref, llb.Platform(amd64)).Marshal(ctx, llb.LinuxAmd64)
	if err != nil {
		return "", err
	}
	var versions string
	_, err = c.Build(ctx, client.SolveOpt{}, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		res, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		r, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		v, err := r.ReadFile(ctx, gateway.ReadRequest{Filename: "/unikfile-versions"})
		versions = string(v)
		return gateway.NewResult(), err
	}, nil)
	return versions, err
}

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// HostVersions are the host's versions of Debian packages, as
// Builder.VersionsOf writes them (a package that is not installed is left
// out).
func HostVersions(packages []string) string {
	out, _ := exec.Command("dpkg-query", append([]string{"-W", "-f", "${Package}=${Version}\n"}, packages...)...).Output()
	return versionsOf(string(out), packages)
}

// VersionsOf are the builder's recorded versions of packages, one
// "package=version" line each, in the order of packages.
func (b Builder) VersionsOf(packages []string) string { return versionsOf(b.Versions, packages) }

func versionsOf(text string, packages []string) string {
	have := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && v != "" {
			have[strings.TrimSuffix(k, ":amd64")] = v
		}
	}
	var s strings.Builder
	for _, p := range packages {
		if v, ok := have[p]; ok {
			fmt.Fprintf(&s, "%s=%s\n", p, v)
		}
	}
	return s.String()
}

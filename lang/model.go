package lang

import "github.com/hashicorp/hcl/v2"

// Project is one loaded Unikfile with every expression evaluated.
type Project struct {
	// File is the Unikfile's absolute path; Dir is its directory, the root
	// every relative path in it is resolved against.
	File string
	Dir  string
	// Apps and Targets are in declaration order.
	Apps    []*App
	Targets []*Target
	Build   Build

	// decoders decode each target's provider block into its Settings,
	// checking them against apps (partial: not every app is known);
	// LoadWorkspace calls them again once a target's imports are loaded.
	decoders map[*Target]func(apps []AppPorts, partial bool) hcl.Diagnostics
}

// App returns the app with the given name, or nil.
func (p *Project) App(name string) *App {
	for _, a := range p.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Target returns the target with the given name, or nil.
func (p *Project) Target(name string) *Target {
	for _, t := range p.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// App is an `app "name" { ... }` block.
type App struct {
	Name     string
	Source   string // absolute path of the build context, inside Project.Dir
	Language string // a name of the Catalog's Languages
	Base     string // a name of the Catalog's Bases
	Main     string // language-specific entry point, e.g. "./cmd/api"; "" means "."
	Args     []string
	Env      map[string]string
	Ports    []int
	// MemoryMiB is the guest memory; `memory = "256MiB"` in the Unikfile.
	MemoryMiB int
	// MemorySet says the Unikfile set memory; otherwise a bundle that
	// needs more (a JVM, a large runtime) gets more.
	MemorySet bool
	// Builder is the image the buildkit executor compiles in; "" is the
	// language's default (the official image at the host toolchain's version).
	Builder string
	// BaseSettings is what the base decoded from the app's block named
	// after it (`linux { ... }`), of the base's own type; see BaseSchema.
	BaseSettings any
	Range        hcl.Range // the block's header, for diagnostics
}

// Target is a `target "name" { ... }` block.
type Target struct {
	Name     string
	Provider string   // a name of the Catalog's Providers
	Apps     []string // names of apps, from references such as app.api
	// Settings is what the provider decoded from the target's block named
	// after it (`qemu { ... }`), of the provider's own type; see
	// ProviderSchema.
	Settings TargetSettings
	Range    hcl.Range

	// Format is the image format the target boots (kernel+initrd, raw,
	// qcow2, vmdk, ...) and Boot the firmware of disk formats (bios |
	// uefi); both default per provider (ProviderSchema.Default).
	Format string
	Boot   string

	// Imports are apps declared in other Unikfiles, written as strings
	// "DIR:APP" in apps; Load checks their syntax only, LoadWorkspace
	// checks that DIR/Unikfile declares APP.
	Imports []AppRef
}

// Build is the optional project-wide `build { ... }` block.
type Build struct {
	Executor string // a name of the Catalog's Executors; local by default
	// ExecutorSet is true when the Unikfile names the executor (so that
	// UNIKFILE_BUILDKIT_HOST does not override an explicit "local").
	ExecutorSet bool
	// BuildKitHost is buildkitd's address (unix://, tcp://,
	// docker-container://, kube-pod://); "" is BuildKit's default socket.
	BuildKitHost string
	// CacheFrom and CacheTo are BuildKit cache imports and exports, as
	// BuildKit names them: type=registry,ref=...,mode=max or type=local,src=/dest=.
	CacheFrom []CacheSpec
	CacheTo   []CacheSpec
}

// CacheSpec is one BuildKit cache import or export: its type and attributes.
type CacheSpec struct {
	Type  string
	Attrs map[string]string
}

// AppRef is a reference from a target to an app of another Unikfile:
// apps = ["services/api:api"].
type AppRef struct {
	// Path is the directory as written (slash-separated, relative to the
	// referencing Unikfile); Dir is it made absolute.
	Path string
	Dir  string
	Name string
	// Range is the reference's position in the referencing Unikfile.
	Range hcl.Range
}

// String is the reference as written, "DIR:APP".
func (r AppRef) String() string { return r.Path + ":" + r.Name }

// Package kbuild builds Linux kernels specialised for an app and the
// platform it boots on: the "minimal" kernel of the linux base
// (linux { kernel = "minimal" }).
//
// It owns: what a kernel must offer (Needs, from the app's language and
// the platform: NeedsFor, a pure function over three tables: languages,
// providers, formats), the configuration that gives it (Fragment: Linux's
// allnoconfig plus tinyconfig's options plus each feature's options, every
// driver built in, no modules; Missing checks that Kconfig kept them),
// the kernel source (Debian's linux-source-6.1, fetched with apt-get
// download and unpacked into the kbuild folder: FetchSource), and the
// build (Builder.Build: one object tree per source version and machine
// family, reused so a changed configuration recompiles only what it
// changes; make niced and with progress lines; cancellation kills make's
// process group; the kernel stored under a key of the recipe, the
// source, the compiler and the fragment, shared by every app with the
// same needs, written whole or not at all), and the folder's pruning
// (Prune: superseded sources and their trees, trees no kept kernel was
// built in, kernels the caller does not keep; under the folder's GC lock,
// which Build holds shared, and the trees' locks; each removal one rename
// out of the way first).
//
// Its kernels are PVH vmlinux files with virtio-mmio devices for
// microVMs (QEMU's microvm boots them with no firmware; stored compacted:
// program headers only, without the linker's alignment fill) and bzImages with
// PCI (and an EFI stub for UEFI disks) for PCs and clouds.
//
// It must not know about images, apps or targets beyond their language
// and platform (the pipeline's kernel node asks it), nor boot anything.
// It is the only part of unikfile that downloads during a build: the
// kernel source, when an app asks for a minimal kernel and none is
// unpacked yet.
package kbuild

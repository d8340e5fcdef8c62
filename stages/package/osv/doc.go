// Package osv is the osv base of the package stage: it turns an app bundle
// into an OSv image, OSv's kernel plus a read-only ROFS root file system
// (package rofs) holding the app, its shared libraries, /libenviron.so and
// the files and mount points OSv expects, written by unikfile itself.
//
// It owns: finding an OSv kernel (ResolveKernel: the Unikfile's path,
// UNIKFILE_OSV_KERNEL, then unikfile's kernel cache) and filling that cache
// from a release pinned by digest (FetchKernel); the image layout (Layout);
// OSv's command line (Cmdline: kernel options, --ip for QEMU's user
// network or DHCP elsewhere, --env, then the app's argv, quoted as OSv
// parses them); the direct-boot image directory (Build: the kernel and a
// raw disk whose MBR partition #2 is the ROFS, booted with -kernel and
// -append); the BIOS-bootable single disk (BuildDisk: OSv's loader.img, the
// command line at byte 512, the ROFS partition at a 2 MiB boundary), which
// the format stage converts; the QEMU arguments the image needs (QEMUArgs,
// which unikfile's qemu provider derives from the image's RootDisk);
// OSv's console protocol (Console: the line that says the app is ready,
// the lines that give its exit status), which images carry for providers;
// the readiness helper (helper/ready.c, BuildReady: OSv runs it beside an
// app with ports, and it prints ReadyMarker once they accept); and
// the base's entry in the bases table (Base: its settings block, Package,
// Disk, FetchKernel).
//
// It must not compile (the compile stage builds programs for this base,
// see compile.TargetFor), download anything while building an image (a
// missing kernel is an error saying how to get one), or boot anything:
// deploy providers boot the image. The same inputs give byte-identical
// files and the same image digest.
package osv

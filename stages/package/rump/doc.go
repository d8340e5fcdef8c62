// Package rump is the rump base of the package stage: it bakes an app that
// the compile stage built with the Rumprun toolchain (a relocatable object
// carrying Rumprun's bake recipe, see stages/compile/rumprun) into a
// Rumprun unikernel, one multiboot ELF holding the app, NetBSD's libc and
// the rump kernel drivers it needs (rumprun-bake hw_virtio), and gives it
// the configuration Rumprun reads at boot.
//
// It owns: the base's entry in the bases table (Base: its rump { }
// settings block, Languages, Package, Disk); the configuration JSON
// (Config: argv with argv[0], the environment as repeated "env" keys, the
// network, static for QEMU's user network and DHCP elsewhere), written the
// way Rumprun's lib/librumprun_base/config.c parses it, with what that
// parser cannot carry refused; baking (Bake: rumprun-bake, then strip,
// deterministic); the direct-boot image (the baked kernel with the JSON as
// its command line, booted with -kernel and -append); the BIOS disk
// (through stages/package/disk, which boots multiboot kernels with
// SYSLINUX's mboot.c32, with a DHCP configuration); and Rumprun's console
// protocol (Console: the line it prints when it calls main, the lines
// that give the exit status; Rumprun halts instead of powering off).
//
// It must not compile (the compile stage builds programs for this base,
// with the same toolchain, see compile.TargetFor), download anything, or
// boot anything: deploy providers boot the image.
package rump

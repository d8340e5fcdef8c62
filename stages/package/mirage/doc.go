// Package mirage is the mirage base of the package stage: it turns the
// bundle of an OCaml app, a MirageOS unikernel built for Solo5's virtio
// target by the compile stage's ocaml language (mirage configure -t
// virtio, mirage build), into a direct-boot image that QEMU loads with
// -kernel.
//
// It owns: the app's mirage block (the toolchain, which the compile stage
// reads back) and what a unikernel cannot take (environment variables,
// arguments its command line cannot carry); the boot parameters
// (BootKeys: --ipv4 and --ipv4-gateway for QEMU's user network when the
// unikernel takes them, then the app's args) and their quoting as
// MirageOS parses them (Cmdline); the devices a direct boot gives (one
// network card, no disk); the image directory (Build: the unikernel and
// image.json); what the guest needs of the machine (Hardware: a CPU model,
// no ACPI, isa-debug-exit, whose status 83 means Solo5 ended); and Solo5's
// console protocol (Console: started at its first line, the exit status
// from solo5_exit and aborts, the address MirageOS's stack logs), which
// images carry for providers.
//
// It must not compile (the compile stage runs mirage), boot anything
// (deploy providers do), or make disks: a Solo5 unikernel boots directly,
// and Disk says so.
package mirage

// Package includeos is the includeos base: a C or C++ service that
// stages/compile linked with IncludeOS (with CMake and an IncludeOS SDK,
// stages/compile/includeos) into a 64-bit multiboot ELF, made bootable.
//
// It owns the app's `includeos { sdk }` block and what of an app IncludeOS
// cannot take (env, arguments its command line cannot carry); the
// multiboot kernel written from the ELF by the Multiboot Specification
// (multiboot.go: the loadable segments at their physical addresses and
// the header's address fields, so that QEMU's -kernel, which reads no
// 64-bit ELF, loads it); the command line; the direct-boot image
// (kernel+initrd format: the kernel and its command line); its BIOS disk,
// a GRUB hybrid ISO image made the same way every time (disk.go); and
// IncludeOS's console protocol (console.go), which tells providers when
// the service started and how it ended.
//
// It must not compile (the compile stage does), download or build an SDK,
// or boot anything: what a provider needs is data on pack.Image.
package includeos

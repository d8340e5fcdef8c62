// Package includeos is the compile stage's side of the includeos base:
// finding an IncludeOS SDK (the app's `includeos { sdk = "..." }`,
// UNIKFILE_INCLUDEOS_SDK) and checking that it is one, the programs its
// CMake toolchain file names (their identity is part of every compile key),
// and building a service with CMake and Ninja (or make) against it: one
// fresh build folder per service, the service's ELF (a 64-bit multiboot
// kernel) as the result.
//
// It knows nothing of bundles, images or QEMU: stages/compile puts the ELF
// into a bundle, stages/package/includeos makes it bootable. It never
// downloads or builds an SDK; a missing one is an error that says how to
// build one.
package includeos

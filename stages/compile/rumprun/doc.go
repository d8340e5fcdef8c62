// Package rumprun is the Rumprun toolchain as unikfile uses it: finding one
// (Resolve: the app's rump { toolchain }, then UNIKFILE_RUMPRUN_TOOLCHAIN,
// then x86_64-rumprun-netbsd-gcc in PATH), the paths of its compilers, its
// CMake toolchain file and rumprun-bake, its identity for cache keys
// (Identity), and what it links: a relocatable object carrying Rumprun's
// bake recipe (CheckProgram, Recipe), which rumprun-bake turns into a
// bootable image.
//
// The compile stage builds C and C++ for the rump base with it, and the
// rump base (stages/package/rump) bakes with it; both resolve it through
// this package so that they agree on which toolchain an app uses.
//
// It must not compile, bake or download anything: a missing toolchain is
// an error saying how to build one (Rumprun's build-rr.sh).
package rumprun

// Package compile turns an app's source into an app bundle: a root
// filesystem tree holding the program and what it needs at run time, plus
// a manifest saying how to start it (the command before the app's
// arguments, the runtime's environment, the working directory, the memory
// it needs). Languages are a table (one file each: golang.go, c.go for C
// and C++, rust.go, python.go, node.go, java.go, elf.go, and ocaml.go,
// whose apps are MirageOS unikernels for Solo5 built by mirage with a
// toolchain found by mirage.go); the local
// executor runs the host's toolchains, the first in PATH, whose identity
// is part of every key. Dynamic ELF files get their shared-library
// closure from elfdeps. How programs are built for each base (Go's link
// mode, C's link flags, the libraries a base's kernel supplies, the
// languages it cannot run, a base's own cross toolchain) is the table of
// targets in bases.go; the app's base picks its line, whose name is part
// of the key. A base whose programs are linked with its kernel by a
// toolchain of its own has a Compiler in its line that builds them
// instead (includeos.go: CMake with an IncludeOS SDK, through
// stages/compile/includeos).
// The buildkit executor (stages/compile/buildkit) compiles every language
// but elf and ocaml in builder images, for the linux base only (it refuses
// other bases, so mirage's OCaml apps are compiled locally),
// and shares the key and bundle helpers here (SourceDigest, FinishBundle,
// ReadBundle) and each language's commands, arguments, choices and launch
// (GoBuildArgs, CFlags, CStaticArgs, PickProgram, CargoBuildArgs,
// PythonCompileArgs, JlinkArgs, ...; Closure with the filesystem libraries
// come from), so both write the same bundles.
//
// It must not know about kernels, images or targets: the package stage joins
// a bundle with a base, and arguments, environment and ports are applied
// there, so changing them never recompiles.
package compile

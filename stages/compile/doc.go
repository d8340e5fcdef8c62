// Package compile turns an app's source into an app bundle: a root
// filesystem tree holding the program and what it needs, plus the path of
// the program inside it. Languages are a table (one file each); the local
// executor runs the host's toolchains. The buildkit executor
// (stages/compile/buildkit) compiles in builder images and shares the key
// and bundle helpers here (SourceDigest, WriteManifest, ReadBundle, the Go
// build arguments), so both write the same bundles.
//
// It must not know about kernels, images or targets: the package stage joins
// a bundle with a base, and arguments, environment and ports are applied
// there, so changing them never recompiles.
package compile

// Package buildkit is the buildkit compile executor: it compiles apps in a
// builder image on a local or remote buildkitd and writes the bundle into
// unikfile's cache, the same bundle the local executor writes.
//
// It owns the connection to buildkitd (unix://, tcp:// with TLS, and
// BuildKit's connection helpers docker-container:// and kube-pod://), the
// choice between it and the local executor (Select, for "auto"), the
// recipe of each language as LLB (a table, one file each: golang.go, c.go
// for C and C++, rust.go, python.go, node.go, java.go; the default builder
// images in images.go), BuildKit's cache imports and exports (cache_from /
// cache_to, one entry per app), and BuildKit's progress display, whose
// lines it hands to the caller.
//
// A recipe runs the local executor's commands with the same arguments
// (stages/compile exports them) in the builder image, with the source as
// an llb.Local that honours the ignore files, and makes the bundle folder
// (rootfs/ plus what the recipe tells itself in meta/). Once it is
// exported, the language finishes the bundle as the local executor does,
// with the shared-library closure read from the builder image's
// filesystem (imagefs.go: elfdeps reading through a gateway session,
// opened only when a library is needed) instead of the host's.
//
// It must not plan the graph or know what happens to a bundle after the
// compile stage; pipeline/ calls it from the compile node.
package buildkit

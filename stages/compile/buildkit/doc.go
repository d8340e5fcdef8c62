// Package buildkit is the buildkit compile executor: it compiles apps in a
// builder image on a local or remote buildkitd and writes the bundle into
// unikfile's cache, the same bundle the local executor writes.
//
// It owns the connection to buildkitd (unix://, tcp:// with TLS, and
// BuildKit's connection helpers docker-container:// and kube-pod://), the
// choice between it and the local executor (Select, for "auto"), the LLB of
// each language (golang.go: the source as an llb.Local that honours the
// ignore files, the builder image, cache mounts for the Go build and module
// caches, the same go build flags as the local executor), BuildKit's cache
// imports and exports (cache_from / cache_to), and BuildKit's progress
// display, whose lines it hands to the caller.
//
// It must not plan the graph or know what happens to a bundle after the
// compile stage; pipeline/ calls it from the compile node.
package buildkit

// Command bench measures unikfile against the floor of what it does, in one
// run, and prints the ratios:
//
//   - cold build of examples/hello (unikfile build, empty cache) against the
//     bare steps: go build of the app and of the guest init, then writing
//     the initramfs with the same library call;
//   - no-change `unikfile up` (everything cached, instance running);
//   - boot to first HTTP response with `unikfile up` against booting the
//     same kernel and initramfs with a plain qemu command line;
//   - edit to new version under `unikfile watch` (main.go written, until
//     the first HTTP response with the new text) against an incremental
//     `go build` of a change of the same size plus a plain QEMU boot of the
//     image to its first response (-watch-only runs just this one);
//   - writing the gce tarball of examples/hello's raw disk padded to 1 GiB
//     with format.Convert against the previous writer (archive/tar through
//     compress/gzip at BestSpeed over the whole GiB); -gce-only runs just
//     this one.
//
// Two long runs check robustness rather than speed (not in CI): -suite kill
// kills `unikfile up` or `unikfile build` with SIGKILL at random moments
// and checks each recovery (the next up succeeds, every cache entry
// verifies, one instance, one run directory, one QEMU, an image equal to an
// undisturbed build's); -suite soak feeds a watch hundreds of edits and
// checks that it then holds what it held after the first (QEMUs, open
// files, goroutines, children; the watch prints them on SIGUSR1).
// bench/fuzz runs every fuzz target.
//
// Run it with bench/run; record results in docs/benchmarks.md.
package main

// Package stamp is the no-op fast path of `unikfile build`: a stamp is the
// metadata (size, mtime, ctime, inode, device, mode) of every path a
// successful build relied on (Unikfiles, the folders searched and
// digested, every file digested, the toolchain, the kernel tree, the
// images produced, unikfile's own executable), keyed by the exact
// invocation (executable, arguments, working directory, the environment a
// build reads), with what a replay prints. A later process with the same
// invocation whose paths all still have that metadata, outside the racy
// window, prints the same without loading a Unikfile, planning, hashing or
// running a toolchain. Any doubt (no stamp, another key, one changed or
// missing path) is a normal build.
//
// It owns the stamp's key, file format and check, and Early, which a
// command's process runs before anything else. It must stay importable
// from the first package initialised in the unikfile binary: it imports
// only standard packages that are initialised early (no fmt, reflect,
// path/filepath, encoding/json; deps_test.go holds the list), so that the
// check runs before the cloud SDKs, protobuf registries and regular
// expressions of the rest of the binary initialise (about three quarters
// of the CPU time of a no-op process before this package existed). It
// must not know what a build is: what a stamp covers is recorded by
// pipeline (stamp.go) and cache (Snapshot), and the CLI writes it.
package stamp

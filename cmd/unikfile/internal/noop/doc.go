// Package noop answers a no-op `unikfile build` before the rest of the
// binary initialises: its init runs internal/stamp's Early check and, when
// a stamp holds, prints the replay and exits 0 (1 if the output cannot be
// written).
//
// It exists because Go initialises every package linked into a binary
// before main runs, and unikfile links the cloud SDKs, gRPC and protobuf
// registries, govmomi's type tables and many regular expressions: their
// initialisation was about three quarters of the CPU time of a no-op
// build of a hundred apps. Go initialises packages in a fixed order
// (sorted by import path, each after its imports), so a package whose
// imports are all initialised early runs before any package that sorts
// after it or waits on later imports; this one imports only os and
// internal/stamp, and the e2e test of the no-op checks that no package
// outside the standard library and unikfile initialised before a replay
// ended the process.
//
// It must do nothing else, and nothing when no stamp holds: the command
// then runs as usual (and does not check the same stamp again).
package noop

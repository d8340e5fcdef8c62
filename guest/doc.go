// Package guest owns what runs inside a linux-base unikernel: the init
// program (guest/init, PID 1 in the guest) and the contract between it and
// the host (Config, the console markers).
//
// The init is built from this package's embedded source with the host Go
// toolchain (Build; SourceDigest keys the cache of built inits), so it must
// depend on the standard library and this package only.
// This package must not import anything outside the standard library either:
// it is compiled into the guest.
package guest

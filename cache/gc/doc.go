// Package gc decides what of the cache may go: the roots a prune keeps
// are the images instances use (every record of the state store), the
// newest image of each app in each format and boot mode (the one its last
// build used), the images build stamps name, and everything those were
// made from (their bundles, the guest init, the kernel+initrd image of a
// disk). It also applies the automatic limit after builds (Auto).
//
// The store does the removing (cache.Store.Prune: atomic, safe against a
// concurrent build); this package only chooses. It reads image
// descriptions (package pack) and instance records (package state), and
// must not build, boot or stop anything.
//
// It also says which built kernels (package kbuild, a store of its own)
// this cache still needs: KernelsKept, for `kernel prune`.
//
// Callers: the CLI's `images prune` and `kernel prune` and, after a
// build, Auto.
package gc

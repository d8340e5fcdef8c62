// Package cache is the content-addressed store of stage outputs. An entry is
// a directory named by a key that digests every input of the stage that made
// it (sources, settings, toolchain identity, unikfile's own version).
//
// Entries appear atomically: a stage writes into a private temporary folder,
// and the folder is renamed into place only when complete, so a kill -9 at any
// moment leaves nothing a later run trusts. The package must not know what
// stages put into entries.
//
// Entries also leave atomically (Prune, gc.go): one rename out of the
// store, under a GC lock that builds hold shared while they use entries.
// Each entry records its last use and the entries it was made from; which
// entries must stay is the caller's to say (package cache/gc).
//
// It also keeps what makes an unchanged tree cheap to check: a StatCache
// (file metadata to content digest, never trusted within RacyWindow of a
// file's last change) and stamps (the metadata of everything one run relied
// on, so that an identical later run can be answered from stat calls).
package cache

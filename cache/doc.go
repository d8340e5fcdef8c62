// Package cache is the content-addressed store of stage outputs. An entry is
// a directory named by a key that digests every input of the stage that made
// it (sources, settings, toolchain identity, unikfile's own version).
//
// Entries appear atomically: a stage writes into a private temporary folder,
// and the folder is renamed into place only when complete, so a kill -9 at any
// moment leaves nothing a later run trusts. The package must not know what
// stages put into entries.
package cache

// Package state owns the record of the instances unikfile has started: an
// embedded bbolt database (state.db in the state directory) holding one JSON
// Instance per key, and per-project file locks that serialize commands which
// change a project's instances (`unikfile up`, `down`, `watch`).
//
// The database is opened for one transaction at a time and closed again, so
// that no command holds bbolt's file lock across a long operation: `unikfile
// ps` never waits behind a boot. Long operations are serialized with Lock
// instead, per project.
//
// It must not start, stop or inspect instances (that is stages/deploy and its
// providers), nor know any provider's configuration: Instance.Config is an
// opaque JSON document the provider owns.
//
// Callers: stages/deploy (the reconciler) and the CLI's ps/logs/down.
package state

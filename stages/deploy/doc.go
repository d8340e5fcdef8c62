// Package deploy runs images: it defines the Provider interface (the verbs a
// user has: boot, refresh, logs, stop) and the Registry of providers, and it
// owns the reconciler behind `unikfile up`, `down` and `ps`: which instances
// of a project exist, which are up to date, which to boot, replace or remove.
// Each provider lives in a subpackage (qemu today) and is one entry in the
// table in stages/registry. Images of bases without unikfile's guest init
// (a console protocol of their own, a separate root disk) go only to
// providers that say they apply them (ForeignGuests, guests.go); the
// others refuse them before booting (CheckImage).
//
// It must not build or package images (it receives finished ones), nor know
// how any particular hypervisor or cloud works: everything provider-specific
// stays behind Provider. Instance records go through package state, and every
// change to a project's instances happens under that project's lock.
//
// Callers: the CLI (up, down, ps, logs) and the watch loop.
package deploy

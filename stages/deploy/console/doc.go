// Package console is the host's side of the console contract: every
// provider reads the guest's serial console (a file QEMU writes, a
// libvirt stream, a datastore file, a cloud's console output) and learns
// from the guest init's markers (package guest) that the app is ready,
// where the guest's network is, and the app's exit status.
//
// It owns parsing those markers, line by line, as bytes arrive; it must
// not know where the bytes come from or how any provider reaches them.
package console

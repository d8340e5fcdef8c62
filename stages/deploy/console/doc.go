// Package console is the host's side of the console contract: every
// provider reads the guest's serial console (a file QEMU writes, a
// libvirt stream, a datastore file, a cloud's console output) and learns
// from the guest init's markers (package guest) that the app is ready,
// where the guest's network is, and the app's exit status; or, for a base
// whose guest is not that init (osv), the same from the guest's own lines
// as the image's pack.ConsoleProtocol describes them.
//
// It owns parsing those lines, one by one, as bytes arrive; it must
// not know where the bytes come from or how any provider reaches them.
package console

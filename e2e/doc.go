// Package e2e holds the end-to-end tests: they build the unikfile binary,
// run it the way a user does, boot real QEMU (TCG when KVM is not usable)
// and talk HTTP to the apps. They need qemu-system-x86_64, Go and a kernel
// (scripts/install-deps provides all three); without them they fail with
// the reason, except where noted.
package e2e

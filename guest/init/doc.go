// Command init is PID 1 of a linux-base unikernel. The package stage puts it
// at /init in the initramfs and the kernel runs it (rdinit=/init).
//
// It mounts the pseudo filesystems, reads guest.ConfigPath, loads the kernel
// modules listed there (skipping PCI drivers that match no present device),
// configures the first ethernet interface (DHCP, then
// the static fallback), starts the app on the serial console, prints
// guest.ReadyMarker once the app's ports listen, reaps zombies, forwards
// SIGTERM and SIGINT to the app, and when the app ends prints
// guest.ExitMarker with its status and powers the machine off.
//
// It is quiet unless the kernel command line has unikfile.verbose; every line
// it prints starts with "unikfile-init: ".
//
// It must depend on the standard library and package guest only: it is built
// from source embedded in package guest (guest.Build). Files named *_linux.go
// hold the system calls; the others are pure and unit-tested on any host.
package main

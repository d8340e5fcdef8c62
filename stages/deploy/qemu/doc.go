// Package qemu is the local deploy provider: it boots kernel+initrd images
// (-kernel) and disk images (raw, qcow2, vmdk, vhd, vdi as a virtio disk,
// through SeaBIOS, or OVMF on the q35 machine for UEFI) in QEMU on this
// machine, detached in a session of their own, with user-mode
// networking and host port forwards, the serial console in a file that
// rotates (rotate.go: QMP chardev-change, no copy, no byte lost), a QMP
// socket for a clean stop, and KVM when a real probe shows it works (TCG
// otherwise, with a warning).
//
// A replacement boots on temporary host ports and takes the real ones over
// from the instances it replaces (QMP hostfwd_remove/hostfwd_add) once it is
// ready. A stop presses the guest's power button first (system_powerdown),
// when the guest's console says its init listens for it, so the app gets
// SIGTERM and time to finish; then QMP quit, SIGTERM, SIGKILL.
//
// Everything an instance needs lives in its run directory; the typed Config
// it was started with is stored in the instance's record, so `unikfile ps
// --json` shows exactly how it was started.
//
// It must not read the state store or decide which instances should exist
// (that is the reconciler in stages/deploy), nor build images.
package qemu

// Package disk turns a kernel+initrd image (stages/package/linux) into a
// self-booting raw disk image, without loop devices, mounts or root:
//
//   - bios: an MBR partition table with one bootable FAT32 partition that
//     holds the kernel, the initramfs and SYSLINUX.CFG; SYSLINUX (Debian's
//     syslinux package) is installed into it and Debian's mbr.bin into the
//     first 440 bytes.
//   - uefi: a GPT with one EFI system partition (FAT32) that holds a
//     unified kernel image at \EFI\BOOT\BOOTX64.EFI: systemd's EFI stub
//     (package systemd-boot-efi) with the kernel, the initramfs and the
//     command line added as PE sections.
//
// The partition tables are written by sfdisk on the image file, the file
// system by mkfs.vfat --offset and mtools; every identifier (disk and
// partition GUIDs, MBR signature, FAT volume ID) is derived from the
// source image's digest and every timestamp is fixed, so the same
// kernel+initrd image always gives the same bytes.
//
// It must not compile, package apps or boot anything; converting the raw
// image into other formats is stages/package/format's job. A missing tool
// is an error naming the Debian package to install.
package disk

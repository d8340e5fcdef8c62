// Package format converts a raw disk image (stages/package/disk) into the
// formats hypervisors and clouds take: qcow2, vmdk (streamOptimized and
// monolithicSparse), vhd (fixed), vdi, and gce (a disk.raw in a GNU tar.gz).
// The formats are a table (Formats), one entry per format.
//
// qemu-img (Debian's qemu-utils) writes qcow2, vmdk, vhd and vdi; the
// identifiers and times it stamps (the VMDK content ID, VDI UUIDs, the VHD
// footer's UUID, time and checksum) are then replaced by values derived
// from the raw image's digest, so the same raw image always gives the same
// bytes. gce is written in Go, in time proportional to the disk's data:
// runs of zeros become deflate blocks of their own (gzipzeros.go).
//
// It must not build raw disks, package apps or boot anything.
package format

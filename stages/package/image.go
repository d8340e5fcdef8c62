package pack

import "github.com/unikfile/unikfile/lang"

// ImageFile is the file in an image directory that describes the image.
const ImageFile = "image.json"

// FormatKernelInitrd is the direct-boot format: a kernel and an initramfs
// that a hypervisor loads itself (QEMU's -kernel). Every other format is a
// disk image (see stages/package/disk and stages/package/format).
const FormatKernelInitrd = lang.FormatKernelInitrd

// Image is a bootable image: what the package stage writes into an image
// directory and what deploy providers boot.
//
// A kernel+initrd image names its Kernel and Initrd files, or, for a base
// whose kernel reads its root file system from a disk (osv), its Kernel
// and RootDisk; the linux base names all three when a large bundle is on
// a root disk. A disk image
// (raw, qcow2, vmdk, ...) names its Disk file and the Boot firmware it
// needs; it was made from the kernel+initrd image whose digest is Source,
// and keeps that image's Cmdline, KernelVersion, MemoryMiB and Ports.
type Image struct {
	App    string `json:"app"`
	Base   string `json:"base"`
	Format string `json:"format"`           // FormatKernelInitrd, or a disk format
	Kernel string `json:"kernel,omitempty"` // file name inside the image directory
	Initrd string `json:"initrd,omitempty"` // file name inside the image directory
	// RootDisk, in a direct-boot image, is a disk (file name inside the
	// image directory, raw) that the guest reads its root file system
	// from: OSv's ROFS disk, or the linux base's EROFS disk beside an
	// initramfs of the init alone. The hypervisor attaches it read-only as
	// the first virtio block device, on the machine's bus (PCI, or
	// virtio-mmio on a microVM).
	RootDisk      string `json:"root_disk,omitempty"`
	Cmdline       string `json:"cmdline"`
	KernelVersion string `json:"kernel_version"`
	// Digest is, for kernel+initrd, sha256 over the kernel, initrd and
	// cmdline: two images with the same digest boot the same way. For a
	// disk image it is the sha256 of the Disk file.
	Digest    string `json:"digest"`
	MemoryMiB int    `json:"memory_mib"`
	Ports     []int  `json:"ports,omitempty"`
	// KernelEntry is how a hypervisor enters the kernel file: "" for a
	// bzImage (the Linux boot protocol), KernelEntryPVH for an ELF vmlinux
	// with a PVH entry note, KernelEntryMultiboot for a multiboot kernel
	// (rump's; QEMU's -kernel loads it as it loads a bzImage, and disks
	// boot it through SYSLINUX's mboot.c32, by BIOS only). Bus is where the kernel finds its virtio
	// devices: "" for PCI, BusVirtioMMIO for a microVM without PCI. A
	// provider boots the image on a machine that fits both.
	KernelEntry string `json:"kernel_entry,omitempty"`
	Bus         string `json:"bus,omitempty"`
	// KernelHZ is the kernel's timer frequency (CONFIG_HZ) when its
	// configuration is known, else 0: with it a provider that knows the
	// CPU's TSC frequency can tell every CPU its delay loop instead of
	// having each one after the first measure it.
	KernelHZ int `json:"kernel_hz,omitempty"`
	// Console is how the guest reports on its serial console when it is
	// not unikfile's guest init (nil: guest.ReadyMarker and
	// guest.ExitMarker). Disk images keep their source's.
	Console *ConsoleProtocol `json:"console,omitempty"`
	// Hardware is what the guest needs of its virtual machine besides
	// the usual (a CPU model, no ACPI, an exit device); nil for none.
	// Disk images keep their source's.
	Hardware *Hardware `json:"hardware,omitempty"`

	// Disk images only.
	Disk string `json:"disk,omitempty"` // file name inside the image directory
	Boot string `json:"boot,omitempty"` // "bios" or "uefi"
	// Size is the Disk file's size in bytes; VirtualSize is the size of
	// the disk the guest sees.
	Size        int64 `json:"size,omitempty"`
	VirtualSize int64 `json:"virtual_size,omitempty"`
	// Source is the digest of the kernel+initrd image the disk holds.
	Source string `json:"source,omitempty"`
	// Deterministic says whether the same Source always gives the same
	// Digest (false where a format's writer stamps what cannot be derived).
	Deterministic bool `json:"deterministic,omitempty"`
}

// Kernel entry points and device buses of kernel+initrd images.
const (
	KernelEntryPVH       = "pvh"
	KernelEntryMultiboot = "multiboot"
	BusVirtioMMIO        = "virtio-mmio"
)

// Boot modes of disk images.
const (
	BootBIOS = "bios" // MBR, booted by a PC BIOS (SeaBIOS under QEMU)
	BootUEFI = "uefi" // GPT with an EFI system partition (OVMF under QEMU)
)

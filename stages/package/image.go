package pack

// ImageFile is the file in an image directory that describes the image.
const ImageFile = "image.json"

// Image is a bootable image of the kernel+initrd format: what the linux base
// writes into an image directory and what deploy providers boot.
type Image struct {
	App           string `json:"app"`
	Base          string `json:"base"`
	Format        string `json:"format"` // "kernel+initrd"
	Kernel        string `json:"kernel"` // file name inside the image directory
	Initrd        string `json:"initrd"` // file name inside the image directory
	Cmdline       string `json:"cmdline"`
	KernelVersion string `json:"kernel_version"`
	// Digest is sha256 over the kernel, initrd and cmdline: two images with
	// the same digest boot the same way.
	Digest    string `json:"digest"`
	MemoryMiB int    `json:"memory_mib"`
	Ports     []int  `json:"ports,omitempty"`
}

package pack

import "github.com/unikfile/unikfile/lang"

// Platform is where an image boots: the target's provider ("" when the
// image is built without a target), its image format (FormatKernelInitrd
// or a disk format) and, for disks, the firmware (BootBIOS or BootUEFI;
// "" means BootBIOS).
type Platform struct {
	Provider string
	Format   string
	Boot     string
}

// Direct reports whether the platform boots the image's kernel file
// itself (kernel+initrd) rather than from a disk through firmware.
func (p Platform) Direct() bool { return p.Format == "" || p.Format == FormatKernelInitrd }

// Preparer is a base with work that apps share per need rather than per
// run: the linux base's minimal kernels, one per distinct needs of a
// language on a platform. The pipeline adds one node per distinct ID that
// Prepare returns (shared by every app and Unikfile of the graph that
// needs it), the package node of each app waits for it and gets its
// output as Input.Prepared, and images for different platforms get
// package nodes of their own.
type Preparer interface {
	// Prepare returns the work app a needs for images on platform p, or
	// nil when it needs none (its kernel is a file, say). Label names the
	// work in the ID of a package node for a disk platform.
	Prepare(a *lang.App, p Platform, env *Env) (work *Shared, label string)
}

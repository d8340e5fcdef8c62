// Package linux is the linux base of the package stage: it turns an app
// bundle into a "Linux as a unikernel" image, a kernel plus an initramfs
// whose only workload is the app, supervised by the guest init
// (package guest).
//
// It owns: finding a kernel (ResolveKernel: the Unikfile's path,
// UNIKFILE_KERNEL, then unikfile's kernel cache), filling that cache with
// Debian's kernel when the user asks (FetchKernel, `unikfile kernel
// fetch`), choosing the kernel
// modules the image needs and their load order (ModuleClosure, from each
// module's .modinfo), writing a deterministic initramfs (a newc cpio,
// optionally gzip-compressed), the kernel command line, and the image
// directory (kernel, initrd, image.json; see pack.Image).
//
// It must not download anything while building an image (a missing
// kernel is an error that says how to fetch one), build the init (guest.Build does; the caller
// passes the binary), compile the app, or boot anything: deploy providers
// boot the image. The same inputs always give byte-identical files and the
// same image digest, so the graph can cache images by their inputs.
//
// Called by the graph's package nodes for apps whose base is "linux", and
// by the CLI's kernel commands.
package linux

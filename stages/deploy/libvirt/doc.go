// Package libvirt is the libvirt deploy provider (`provider = "libvirt"`): it
// boots images as libvirt domains on this host or a remote one, through
// libvirt's own remote protocol (github.com/digitalocean/go-libvirt, no cgo)
// over a unix socket, TCP or SSH, so that a remote host needs nothing but
// libvirtd.
//
// Images go into a storage pool as volumes named by their content digest,
// uploaded with StorageVolUpload once and reused by every domain that boots
// them: kernel+initrd for direct kernel boot, or a raw or qcow2 disk (behind
// a per-instance qcow2 overlay, so the image is never written) booted by
// SeaBIOS or, for UEFI disks, the host's OVMF through libvirt's firmware
// auto-selection. The domain XML is built with libvirt.org/go/libvirtxml
// (domain.go) and carries unikfile's metadata (project, target, app, image
// and settings digests, the client that booted it), which is how a boot
// finds and removes the orphans of an `up` that was killed.
//
// The serial console goes, through virtlogd, into a log volume in the same
// pool, which is read back with StorageVolDownload from an offset (through
// a connection of its own, see conn.download): the guest
// init's markers (stages/deploy/console) give readiness, the guest's address
// and the exit status, `logs -f` follows it, and it outlives the domain, so
// an app that exited still shows its status. virtlogd rotates it by its own
// max_size and max_backups (<log>.0 the newest rotated generation, the
// oldest dropped); console.go reads the generations, oldest first, and
// follows across rotations (consoleReader), finds the exit status in the
// tail across them, and deletes them with the volume. The init's
// power-button marker is recorded in the instance's config at boot
// (virtlogd may have rotated it away by the time of a stop), and removal
// keeps the console's end in the run directory in two generations
// (deploy.CreateConsoleCopy). Networking is a libvirt network
// or a bridge (the app is reached at the guest's own address), or QEMU's
// user-mode networking with host port forwards added through the QEMU
// monitor (libvirt 9.0 has no port forwards of its own for it), moved to
// the app's real host ports from the instances it replaces once it is
// ready, as the qemu provider does.
//
// Whatever a failed boot created (volumes it uploaded, the domain, the
// overlay and console volumes) is removed; Stop removes an instance's
// domain and volumes and the image volumes no other domain uses.
//
// It must not read the state store or decide which instances should exist
// (that is the reconciler in stages/deploy), nor build images, nor store
// credentials: a URI with a password is refused, SSH uses the agent or a
// key file.
package libvirt

package osv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/stages/package/osv/rofs"
)

// HostCACerts is the host's CA bundle, copied into images so that apps can
// make HTTPS calls (the path Go, OpenSSL and others read), as the linux
// base does.
const HostCACerts = "/etc/ssl/certs/ca-certificates.crt"

// fstab is OSv's static/etc/fstab_rofs: the ROFS of partition #2 of the
// first disk as /, and OSv's pseudo file systems.
const fstab = `/dev/vblk0.1 /          rofs      defaults 0 0
none         /dev       devfs     defaults 0 0
none         /proc      procfs    defaults 0 0
none         /sys       sysfs     defaults 0 0
none         /tmp       ramfs     defaults 0 0
`

// hosts names the guest itself (OSv's static/etc/hosts).
const hosts = "127.0.0.1 localhost osv.local\n"

// mountPoints are the folders fstab mounts on.
var mountPoints = []string{"/dev", "/proc", "/sys", "/tmp"}

// owned are the paths the base writes; a bundle that has them is refused.
var owned = []string{"/" + EnvironFile, "/etc/fstab", "/etc/mnttab", "/.unikfile"}

// replaced are the bundle's files the base replaces, as the linux base
// does.
var replaced = map[string]bool{"/etc/hosts": true}

// Layout is the image's root file system: the bundle's tree at /, then
// /libenviron.so from the kernel, /etc/fstab, /etc/hosts, /etc/mnttab (a
// link to /proc/mounts), the mount points, the readiness helper at
// ReadyPath when ready names it, and the CA bundle at HostCACerts unless
// the bundle has one (ca names it; "" is the host's, if there is one).
func Layout(bundleRoot string, k *Kernel, ca, ready string) (*rofs.FS, error) {
	f := rofs.New()
	if bundleRoot != "" {
		if err := addTree(f, bundleRoot, replaced); err != nil {
			return nil, fmt.Errorf("the app bundle: %w", err)
		}
	}
	for _, p := range owned {
		if exists, _ := f.Lookup(p); exists {
			return nil, fmt.Errorf("the app bundle has %s, which the osv base writes; remove it from the bundle", p)
		}
	}
	if err := f.AddHostFile("/"+EnvironFile, k.Environ); err != nil {
		return nil, fmt.Errorf("the kernel's %s: %w", EnvironFile, err)
	}
	if err := f.AddBytes("/etc/fstab", []byte(fstab)); err != nil {
		return nil, err
	}
	if err := f.AddBytes("/etc/hosts", []byte(hosts)); err != nil {
		return nil, fmt.Errorf("/etc/hosts: %w", err)
	}
	if err := f.Symlink("/etc/mnttab", "/proc/mounts"); err != nil {
		return nil, err
	}
	if ready != "" {
		if err := f.AddHostFile(ReadyPath, ready); err != nil {
			return nil, fmt.Errorf("the readiness helper: %w", err)
		}
	}
	for _, d := range mountPoints {
		if err := f.Mkdir(d); err != nil {
			return nil, fmt.Errorf("mount point %s: %w (the app bundle has a file there)", d, err)
		}
	}
	if exists, _ := f.Lookup(HostCACerts); !exists {
		if ca == "" {
			if _, err := os.Stat(HostCACerts); err == nil {
				ca = HostCACerts
			}
		}
		if ca != "" {
			if err := f.AddHostFile(HostCACerts, ca); err != nil {
				return nil, fmt.Errorf("CA certificates: %w", err)
			}
		}
	}
	return f, nil
}

// addTree adds the host tree under root at /, but for the files in skip.
// Symbolic links stay links; devices, sockets and pipes are errors.
func addTree(f *rofs.FS, root string, skip map[string]bool) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		ip := "/" + filepath.ToSlash(rel)
		if skip[ip] && !d.IsDir() {
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			return f.Mkdir(ip)
		case t.IsRegular():
			return f.AddHostFile(ip, p)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return f.Symlink(ip, target)
		default:
			return errors.New(p + " is a " + t.String() + "; an OSv image holds only files, folders and symbolic links")
		}
	})
}

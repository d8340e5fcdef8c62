//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/guest"
)

const (
	// rootWait bounds the wait for the root disk's device node.
	rootWait = 5 * time.Second
	// sysroot is where the new root is assembled in the initramfs.
	sysroot = "/sysroot"
)

// switchRoot makes the read-only filesystem on r.Device the root, under
// an overlay whose upper layer is in memory (the app may write anywhere;
// nothing reaches the disk), moves the pseudo filesystems mountAll
// mounted into it, and enters it: the root is moved over / and the init
// chroots into it, the way switch_root does. The initramfs's files stay
// in memory, unreachable; they are the init and its configuration.
func switchRoot(r *guest.Root) error {
	if err := waitDevice(r.Device, rootWait); err != nil {
		return err
	}
	ro, rw, root := sysroot+"/ro", sysroot+"/rw", sysroot+"/root"
	for _, d := range []string{ro, rw, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := syscall.Mount(r.Device, ro, r.FSType, syscall.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", r.Device, r.FSType, ro, err)
	}
	if err := syscall.Mount("tmpfs", rw, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", rw, err)
	}
	for _, d := range []string{rw + "/upper", rw + "/work"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	opts := "lowerdir=" + ro + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work"
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount the overlay on %s (%s): %w", root, opts, err)
	}
	for _, m := range mounts {
		dst := root + m.target
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.target, dst, "", syscall.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s into the new root: %w", m.target, err)
		}
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := syscall.Mount(".", "/", "", syscall.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the new root over /: %w", err)
	}
	if err := syscall.Chroot("."); err != nil {
		return fmt.Errorf("chroot into the new root: %w", err)
	}
	return os.Chdir("/")
}

// waitDevice waits for a device node to appear in devtmpfs.
func waitDevice(dev string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		_, err := os.Stat(dev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if time.Now().After(end) {
			return fmt.Errorf("the root disk %s did not appear within %v (is the disk attached, and its driver in the kernel?)", dev, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

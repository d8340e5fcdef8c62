package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	pack "github.com/unikfile/unikfile/stages/package"
)

// Tools are the programs and files a disk is made with. Zero fields take
// the defaults (Debian's paths; programs from PATH).
type Tools struct {
	MBR  string // syslinux's mbr.bin; default DefaultMBR
	Stub string // systemd's EFI stub; default DefaultStub
	// MBoot is SYSLINUX's mboot.c32, which boots multiboot kernels, with
	// the libcom32.c32 it needs beside it; default DefaultMBoot.
	MBoot string
	// SbinDirs are searched for programs not in PATH (sfdisk and mkfs.vfat
	// live in /usr/sbin, which a user's PATH often lacks); nil means
	// DefaultSbinDirs.
	SbinDirs []string
}

// DefaultSbinDirs are where Debian puts system programs.
var DefaultSbinDirs = []string{"/usr/sbin", "/sbin"}

// lookProgram finds a program in PATH, then in the sbin directories.
func (t Tools) lookProgram(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs := t.SbinDirs
	if dirs == nil {
		dirs = DefaultSbinDirs
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

// Debian's locations of the files the images are made of.
const (
	DefaultMBR   = "/usr/lib/syslinux/mbr/mbr.bin"
	DefaultStub  = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	DefaultMBoot = "/usr/lib/syslinux/modules/bios/mboot.c32"
)

// libcom32 is the library mboot.c32 loads, next to it.
func (t Tools) libcom32() string {
	return filepath.Join(filepath.Dir(or(t.MBoot, DefaultMBoot)), "libcom32.c32")
}

// tool is one program or file, with the Debian package it comes from.
type tool struct {
	name, pkg string
	file      bool // a data file, not a program in PATH
}

func (t Tools) needed(boot string, multiboot bool) []tool {
	common := []tool{
		{name: "sfdisk", pkg: "fdisk"},
		{name: "mkfs.vfat", pkg: "dosfstools"},
		{name: "mcopy", pkg: "mtools"},
		{name: "mmd", pkg: "mtools"},
	}
	switch boot {
	case pack.BootBIOS:
		bios := append(common,
			tool{name: "syslinux", pkg: "syslinux"},
			tool{name: or(t.MBR, DefaultMBR), pkg: "syslinux-common", file: true})
		if multiboot {
			bios = append(bios,
				tool{name: or(t.MBoot, DefaultMBoot), pkg: "syslinux-common", file: true},
				tool{name: t.libcom32(), pkg: "syslinux-common", file: true})
		}
		return bios
	case pack.BootUEFI:
		return append(common,
			tool{name: "objcopy", pkg: "binutils"},
			tool{name: or(t.Stub, DefaultStub), pkg: "systemd-boot-efi", file: true})
	}
	return nil
}

// resolved are the absolute paths of the tools of one boot mode.
type resolved map[string]string

// MissingToolError says which tools are missing and how to install them.
type MissingToolError struct {
	Missing  []string // program names or file paths
	Packages []string // Debian packages that provide them
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("making a bootable disk needs %s, which %s missing; install: apt-get install %s",
		strings.Join(e.Missing, ", "), plural(len(e.Missing), "is", "are"), strings.Join(e.Packages, " "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// resolve finds every tool boot needs (for a multiboot kernel: with
// mboot.c32), or says which packages to install.
func (t Tools) resolve(boot string, multiboot bool) (resolved, error) {
	r := resolved{}
	miss := &MissingToolError{}
	pkgs := map[string]bool{}
	for _, tl := range t.needed(boot, multiboot) {
		var p string
		var err error
		if tl.file {
			p = tl.name
			_, err = os.Stat(p)
		} else {
			p, err = t.lookProgram(tl.name)
		}
		if err != nil {
			miss.Missing = append(miss.Missing, tl.name)
			if !pkgs[tl.pkg] {
				pkgs[tl.pkg] = true
				miss.Packages = append(miss.Packages, tl.pkg)
			}
			continue
		}
		r[tl.name] = p
	}
	if len(miss.Missing) > 0 {
		return nil, miss
	}
	return r, nil
}

// Digest identifies the tools of a boot mode for cache keys: sha256 over
// the contents of each program and file the disk is made with, so an
// upgraded syslinux or stub makes new disks. It fails like Build when a
// tool is missing.
func (t Tools) Digest(boot string) (string, error) { return t.digest(boot, false) }

// MultibootDigest is Digest for the disks of multiboot kernels
// (pack.KernelEntryMultiboot), which also need mboot.c32.
func (t Tools) MultibootDigest(boot string) (string, error) { return t.digest(boot, true) }

func (t Tools) digest(boot string, multiboot bool) (string, error) {
	r, err := t.resolve(boot, multiboot)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		f, err := os.Open(r[n])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", n)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

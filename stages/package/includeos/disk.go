package includeos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/internal/run"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
)

// The BIOS disk of an IncludeOS image is a hybrid ISO 9660 image as
// grub-mkrescue makes them, put together here so that it is the same bytes
// every time: GRUB's El Torito core image (grub-mkimage, i386-pc-eltorito,
// with its few modules and the boot script built in, so that it reads
// nothing else), the kernel at /boot/kernel, and GRUB's hybrid MBR
// (boot_hybrid.img), which boots the same core from a hard disk. SYSLINUX's
// mboot.c32 cannot take its place: it puts the multiboot information at
// 0x2000, where IncludeOS builds its page tables before it reads it.
// Debian's packages: grub-pc-bin (and grub-common), xorriso.

// DefaultGRUBDir is where grub-pc-bin puts GRUB's BIOS modules and images.
const DefaultGRUBDir = "/usr/lib/grub/i386-pc"

// grubModules are built into the core image: disk and CD access, the
// ISO 9660 file system, the multiboot loader and the serial console.
var grubModules = []string{"biosdisk", "iso9660", "multiboot", "serial", "terminal"}

// Paths inside the disk.
const (
	diskKernel   = "/boot/kernel"
	diskCoreFile = "boot/grub/eltorito.img"
)

// diskEpoch is the time of every file and of the volume: 1980-01-01, as
// FAT disks have.
var diskEpoch = time.Unix(315532800, 0).UTC()

const diskAlign = 1 << 20 // disks end on a whole MiB, as Azure's VHDs must

// GRUB is where the disk's tools are; zero fields take the defaults.
type GRUB struct {
	Dir string // GRUB's i386-pc folder; default DefaultGRUBDir
}

const (
	grubHint    = "install GRUB's BIOS images: apt-get install grub-pc-bin"
	xorrisoHint = "install xorriso: apt-get install xorriso"
)

// tools are the programs and files a disk is made with, by name.
func (g GRUB) tools() (map[string]string, error) {
	dir := g.Dir
	if dir == "" {
		dir = DefaultGRUBDir
	}
	out := map[string]string{}
	for _, p := range []struct{ name, hint string }{{"grub-mkimage", grubHint}, {"xorriso", xorrisoHint}} {
		path, err := run.Look(p.name, p.hint)
		if err != nil {
			return nil, fmt.Errorf("IncludeOS disks boot through GRUB: %w", err)
		}
		out[p.name] = path
	}
	files := []string{"boot_hybrid.img", "cdboot.img", "kernel.img", "moddep.lst"}
	for _, m := range grubModules {
		files = append(files, m+".mod")
	}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("IncludeOS disks boot through GRUB, and %s is missing; %s", p, grubHint)
		}
		out[f] = p
	}
	out["dir"] = dir
	return out, nil
}

// Digest identifies the tools, for cache keys.
func (g GRUB) Digest() (string, error) {
	t, err := g.tools()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, n := range sortedKeys(t) {
		if n == "dir" {
			continue
		}
		f, err := os.Open(t[n])
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

// grubScript is the boot script built into the core: the console on the
// serial port, then the kernel with its command line (its own path first,
// as QEMU's -kernel gives it).
func grubScript(cmdline string) string {
	words := append([]string{diskKernel, diskKernel}, strings.Fields(cmdline)...)
	for i, w := range words {
		words[i] = grubQuote(w)
	}
	return strings.Join([]string{
		"serial --unit=0 --speed=115200",
		"terminal_input serial",
		"terminal_output serial",
		"multiboot " + strings.Join(words, " "),
		"boot",
		"",
	}, "\n")
}

// grubQuote quotes a word for GRUB's script language, which is the
// shell's: single quotes keep every character but the single quote, which
// goes outside them, escaped.
func grubQuote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// DiskInput is what a disk is made of: a direct-boot image (Build's).
type DiskInput struct {
	ImageDir string
	Image    *pack.Image
	// Boot must be pack.BootBIOS (or ""): IncludeOS boots through a
	// multiboot loader, which here is GRUB for BIOS.
	Boot string
	GRUB GRUB
}

// BuildDisk writes outDir/disk.File, a raw disk (a hybrid ISO image) that
// boots the image's kernel by BIOS from a hard disk or a CD, and
// outDir/pack.ImageFile (format "raw", last). The same input gives the
// same bytes.
func BuildDisk(ctx context.Context, in DiskInput, outDir string) (*pack.Image, error) {
	src := in.Image
	if src == nil {
		return nil, errors.New("make IncludeOS disk: no image")
	}
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("make bios disk of %s (includeos): %w", src.App, err)
	}
	if in.Boot != "" && in.Boot != pack.BootBIOS {
		return fail(fmt.Errorf("boot mode %q: IncludeOS images boot by BIOS only (through a multiboot loader, GRUB here); use boot = \"bios\"", in.Boot))
	}
	if src.Base != Name || src.Format != pack.FormatKernelInitrd || src.Kernel == "" {
		return fail(fmt.Errorf("the source image is a %s %q image; an IncludeOS disk is made from an includeos %s image", src.Base, src.Format, pack.FormatKernelInitrd))
	}
	tools, err := in.GRUB.tools()
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	work, err := os.MkdirTemp(outDir, ".work-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "iso")
	if err := os.MkdirAll(filepath.Join(tree, filepath.Dir(diskCoreFile)), 0o755); err != nil {
		return fail(err)
	}
	kernel, err := os.ReadFile(filepath.Join(in.ImageDir, src.Kernel))
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(tree, diskKernel), kernel, 0o644); err != nil {
		return fail(err)
	}
	script := filepath.Join(work, "boot.cfg")
	if err := os.WriteFile(script, []byte(grubScript(src.Cmdline)), 0o644); err != nil {
		return fail(err)
	}
	env := run.Environ("SOURCE_DATE_EPOCH=315532800", "TZ=UTC", "LC_ALL=C")
	mk := append([]string{"-O", "i386-pc-eltorito", "-d", tools["dir"], "-o", filepath.Join(tree, diskCoreFile), "-p", "/boot/grub", "-c", script}, grubModules...)
	if _, err := run.Run(ctx, run.Cmd{Path: tools["grub-mkimage"], Args: mk, Env: env, Dir: work}); err != nil {
		return fail(fmt.Errorf("GRUB's core image: %w", err))
	}
	if err := filepath.WalkDir(tree, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, diskEpoch, diskEpoch)
	}); err != nil {
		return fail(err)
	}
	raw := filepath.Join(work, disk.File)
	iso := []string{"-as", "mkisofs", "-o", raw,
		"-b", diskCoreFile, "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "--grub2-boot-info",
		"--grub2-mbr", tools["boot_hybrid.img"],
		"--modification-date=1980010100000000", "-V", "UNIKFILE", "-r", tree}
	if _, err := run.Run(ctx, run.Cmd{Path: tools["xorriso"], Args: iso, Env: env, Dir: work}); err != nil {
		return fail(fmt.Errorf("the ISO image: %w", err))
	}
	fi, err := os.Stat(raw)
	if err != nil {
		return fail(err)
	}
	size := (fi.Size() + diskAlign - 1) / diskAlign * diskAlign
	if err := os.Truncate(raw, size); err != nil {
		return fail(err)
	}
	if err := os.Rename(raw, filepath.Join(outDir, disk.File)); err != nil {
		return fail(err)
	}
	digest, size, err := pack.FileDigest(filepath.Join(outDir, disk.File))
	if err != nil {
		return fail(err)
	}
	img := &pack.Image{
		App:           src.App,
		Base:          Name,
		Format:        disk.FormatRaw,
		Cmdline:       src.Cmdline,
		KernelVersion: src.KernelVersion,
		Digest:        digest,
		MemoryMiB:     src.MemoryMiB,
		Ports:         append([]int(nil), src.Ports...),
		Disk:          disk.File,
		Boot:          pack.BootBIOS,
		Size:          size,
		VirtualSize:   size,
		Source:        src.Digest,
		Deterministic: true,
		Console:       src.Console,
	}
	if err := atomicfile.WriteJSON(filepath.Join(outDir, pack.ImageFile), img, 0o644); err != nil {
		return fail(err)
	}
	return img, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

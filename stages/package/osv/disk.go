package osv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/atomicfile"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
)

// The BIOS-bootable disk, laid out as OSv's scripts/build lays it out:
// OSv's loader.img (its boot sector, which reads the command line from
// the sectors after it and the compressed kernel from sector 128), the
// command line at byte cmdlineOffset, then the ROFS as partition #2 from
// the first 2 MiB boundary after loader.img. The disk ends on a whole MiB,
// as Azure requires of VHDs.
const (
	cmdlineOffset = 512
	// cmdlineArea is what loader.img's boot sector reads as the command
	// line: sectors 1 to 63.
	cmdlineArea = 63 * sector
	// lzkernelSector is where loader.img's compressed kernel starts.
	lzkernelSector = 128
	partAlign      = 2 << 20
	diskAlign      = 1 << 20
)

// DiskInput is what a BIOS disk is made of: a direct-boot image (Build's
// output), which gives the root file system, and the kernel whose
// loader.img boots it.
type DiskInput struct {
	ImageDir string
	Image    *pack.Image
	Kernel   *Kernel
	// Net is the disk's network; the zero value is DHCP, since a disk
	// may boot on any hypervisor or cloud.
	Net Net
	// Boot must be pack.BootBIOS (or ""): OSv has no UEFI loader.
	Boot string
}

// BuildDisk writes outDir/disk.File, a raw disk that boots by BIOS, and
// outDir/pack.ImageFile (format "raw", last), which the format stage
// converts. The command line is the image's with its network replaced by
// in.Net. The same input gives the same bytes.
func BuildDisk(ctx context.Context, in DiskInput, outDir string) (*pack.Image, error) {
	src := in.Image
	if src == nil {
		return nil, errors.New("make OSv disk: no image")
	}
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("make bios disk of %s (osv): %w", src.App, err)
	}
	if in.Boot != "" && in.Boot != pack.BootBIOS {
		return fail(fmt.Errorf("boot mode %q: OSv images boot by BIOS only (OSv has no UEFI loader); use boot = \"bios\"", in.Boot))
	}
	if src.Base != Name || src.Format != FormatDirect || src.RootDisk == "" {
		return fail(fmt.Errorf("the source image is a %s %q image; an OSv disk is made from an osv %s image", src.Base, src.Format, FormatDirect))
	}
	if in.Kernel == nil || in.Kernel.Boot == "" {
		dir := ""
		if in.Kernel != nil {
			dir = " (" + filepath.Dir(in.Kernel.Loader) + ")"
		}
		return fail(fmt.Errorf("the OSv kernel%s has no %s, the BIOS-bootable kernel that disks start with; OSv's build writes it to build/release/%s: copy it next to the kernel", dir, BootFile, BootFile))
	}
	net := in.Net
	if (net == Net{}) {
		net = DHCP
	}
	cmdline, err := replaceNet(src.Cmdline, net)
	if err != nil {
		return fail(err)
	}
	if len(cmdline)+1 > cmdlineArea || len(cmdline) > MaxCmdline {
		return fail(fmt.Errorf("the command line is %d bytes; OSv takes at most %d", len(cmdline), MaxCmdline))
	}
	boot, err := os.ReadFile(in.Kernel.Boot)
	if err != nil {
		return fail(err)
	}
	if err := checkBootImage(boot, in.Kernel.Boot); err != nil {
		return fail(err)
	}
	rootPath := filepath.Join(in.ImageDir, src.RootDisk)
	rofsStartByte, rofsLen, err := rootPartition(rootPath)
	if err != nil {
		return fail(err)
	}
	partStart := (int64(len(boot)) + partAlign - 1) / partAlign * partAlign
	total := (partStart + rofsLen + diskAlign - 1) / diskAlign * diskAlign

	head := append([]byte(nil), boot...)
	copy(head[cmdlineOffset:cmdlineOffset+cmdlineArea], make([]byte, cmdlineArea))
	copy(head[cmdlineOffset:], cmdline)
	setPartition(head[:sector], uint32(partStart/sector), uint32(rofsLen/sector))

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Remove(filepath.Join(outDir, pack.ImageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	digest, err := writeAtomic(ctx, filepath.Join(outDir, disk.File), func(w io.Writer) error {
		if _, err := w.Write(head); err != nil {
			return err
		}
		if _, err := w.Write(make([]byte, partStart-int64(len(head)))); err != nil {
			return err
		}
		f, err := os.Open(rootPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(w, io.NewSectionReader(f, rofsStartByte, rofsLen)); err != nil {
			return err
		}
		_, err = w.Write(make([]byte, total-partStart-rofsLen))
		return err
	})
	if err != nil {
		return fail(err)
	}
	img := &pack.Image{
		App:           src.App,
		Base:          Name,
		Format:        disk.FormatRaw,
		Disk:          disk.File,
		Boot:          pack.BootBIOS,
		Cmdline:       cmdline,
		KernelVersion: src.KernelVersion,
		Digest:        digest,
		MemoryMiB:     src.MemoryMiB,
		Ports:         append([]int(nil), src.Ports...),
		Size:          total,
		VirtualSize:   total,
		Source:        src.Digest,
		Deterministic: true,
		Console:       src.Console,
	}
	if err := atomicfile.WriteJSON(filepath.Join(outDir, pack.ImageFile), img, 0o644); err != nil {
		return fail(err)
	}
	return img, nil
}

// checkBootImage says why b is not OSv's loader.img: a boot sector ending
// in 0x55AA, an empty partition table for entry #2 to go into, and a
// compressed kernel from sector 128.
func checkBootImage(b []byte, name string) error {
	switch {
	case len(b) <= lzkernelSector*sector || b[510] != 0x55 || b[511] != 0xaa:
		return fmt.Errorf("%s is not OSv's %s (a boot sector and a kernel from sector %d)", name, BootFile, lzkernelSector)
	case !bytes.Equal(b[partitionTable:510], make([]byte, 510-partitionTable)):
		return fmt.Errorf("%s already has a partition table: use the %s of OSv's build, not a disk made from it", name, BootFile)
	}
	return nil
}

// rootPartition finds partition #2 of a direct-boot root disk.
func rootPartition(p string) (start, length int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	mbr := make([]byte, sector)
	if _, err := io.ReadFull(f, mbr); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", p, err)
	}
	e := mbr[partitionTable+16*rofsEntry:]
	if mbr[510] != 0x55 || mbr[511] != 0xaa || e[4] != linuxType {
		return 0, 0, fmt.Errorf("%s has no ROFS in partition #2; rebuild the image", p)
	}
	start = int64(le32(e[8:])) * sector
	length = int64(le32(e[12:])) * sector
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if start+length > fi.Size() {
		return 0, 0, fmt.Errorf("%s: partition #2 ends beyond the file; rebuild the image", p)
	}
	return start, length, nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/internal/run"
	pack "github.com/unikfile/unikfile/stages/package"
)

// File is the raw disk's name inside its image directory.
const File = "disk.raw"

// FormatRaw is the format name of the images Build writes.
const FormatRaw = "raw"

// Layout of every disk: partitions start and end on MiB boundaries, so the
// disk's size is a whole number of MiB (as Azure requires of VHDs).
const (
	mib = 1 << 20
	// partStart is the first partition's offset: 1 MiB, after the MBR or
	// the GPT and the space partitioning tools leave for alignment.
	partStart = mib
	// gptTail is what a GPT disk keeps after its last partition for the
	// backup GPT (33 sectors, rounded up to keep the MiB alignment).
	gptTail = mib
	// minPartition is the smallest partition: FAT32 needs at least 65525
	// clusters, and UEFI expects the EFI system partition to be FAT32.
	minPartition = 64 * mib
)

// sourceDateEpoch is the time stamped on every file of the FAT file
// system: 1980-01-01T00:00:00Z, the first time FAT can store. mtools reads
// it from SOURCE_DATE_EPOCH.
const sourceDateEpoch = 315532800

// Input is what a disk is made of.
type Input struct {
	// ImageDir holds the kernel+initrd image Image describes.
	ImageDir string
	Image    *pack.Image
	// Boot is pack.BootBIOS or pack.BootUEFI.
	Boot  string
	Tools Tools
}

// Build writes outDir/File, a raw disk that boots in.Image by in.Boot, and
// outDir/pack.ImageFile describing it (written last: a directory with an
// image.json is complete). The same image and boot mode give the same
// bytes.
func Build(ctx context.Context, in Input, outDir string) (*pack.Image, error) {
	src := in.Image
	if src == nil {
		return nil, errors.New("make disk: no kernel+initrd image")
	}
	fail := func(err error) (*pack.Image, error) {
		return nil, fmt.Errorf("make %s disk of %s: %w", in.Boot, src.App, err)
	}
	if src.Format != pack.FormatKernelInitrd || src.Kernel == "" {
		return fail(fmt.Errorf("the source image is %q; a disk is made from a %s image", src.Format, pack.FormatKernelInitrd))
	}
	if in.Boot != pack.BootBIOS && in.Boot != pack.BootUEFI {
		return fail(fmt.Errorf("boot mode %q: want %q or %q", in.Boot, pack.BootBIOS, pack.BootUEFI))
	}
	multiboot := src.KernelEntry == pack.KernelEntryMultiboot
	if multiboot && in.Boot != pack.BootBIOS {
		return fail(fmt.Errorf("the kernel is a multiboot kernel (base %s), which disks boot by BIOS only (SYSLINUX's mboot.c32): use boot = \"bios\"", src.Base))
	}
	if src.RootDisk != "" || src.KernelEntry == pack.KernelEntryPVH {
		return fail(errors.New("the source image is made for direct boot (a PVH kernel or a root disk beside the initramfs); a disk needs a kernel+initrd image made for disks (a bzImage, everything in the initramfs)"))
	}
	tools, err := in.Tools.resolve(in.Boot, multiboot)
	if err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp(outDir, ".work-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	b := &builder{in: in, tools: tools, work: work, disk: filepath.Join(outDir, File), ids: deriveIDs(src.Digest, in.Boot)}
	if in.Boot == pack.BootBIOS {
		err = b.bios(ctx)
	} else {
		err = b.uefi(ctx)
	}
	if err != nil {
		_ = os.Remove(b.disk)
		return fail(err)
	}
	digest, size, err := pack.FileDigest(b.disk)
	if err != nil {
		return fail(err)
	}
	img := &pack.Image{
		App:           src.App,
		Base:          src.Base,
		Format:        FormatRaw,
		Cmdline:       src.Cmdline,
		KernelVersion: src.KernelVersion,
		Digest:        digest,
		MemoryMiB:     src.MemoryMiB,
		Ports:         append([]int(nil), src.Ports...),
		Disk:          File,
		Boot:          in.Boot,
		Size:          size,
		VirtualSize:   size,
		Source:        src.Digest,
		Deterministic: true,
		Console:       src.Console,
	}
	if err := WriteImage(outDir, img); err != nil {
		return fail(err)
	}
	return img, nil
}

// WriteImage writes img as dir/pack.ImageFile, atomically.
func WriteImage(dir string, img *pack.Image) error {
	return atomicfile.WriteJSON(filepath.Join(dir, pack.ImageFile), img, 0o644)
}

type builder struct {
	in    Input
	tools resolved
	work  string
	disk  string
	ids   ids
}

// ids are the identifiers a disk carries, derived from its content.
type ids struct {
	mbrID    string // 0x + 8 hex digits
	diskGUID string
	partGUID string
	volumeID string // 8 hex digits
}

func deriveIDs(sourceDigest, boot string) ids {
	sum := func(what string) []byte {
		h := sha256.Sum256([]byte("unikfile disk " + boot + " " + what + " " + sourceDigest))
		return h[:]
	}
	return ids{
		mbrID:    "0x" + hex.EncodeToString(sum("mbr")[:4]),
		diskGUID: guid(sum("disk")),
		partGUID: guid(sum("partition")),
		volumeID: hex.EncodeToString(sum("volume")[:4]),
	}
}

// guid formats 16 bytes of b as a version-4-style GUID (RFC 4122 variant).
func guid(b []byte) string {
	u := append([]byte(nil), b[:16]...)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// partitionSize is room for payload bytes of files in a FAT32 partition:
// an eighth more for the file system and 8 MiB spare, in whole MiB.
func partitionSize(payload int64) int64 {
	n := payload + payload/8 + 8*mib
	n = (n + mib - 1) / mib * mib
	return max(n, minPartition)
}

func (b *builder) src(name string) string { return filepath.Join(b.in.ImageDir, name) }

// env is the environment of the tools: mtools without its geometry checks
// and configuration files, and fixed times.
func (b *builder) env() []string {
	return run.Environ("MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null", "SOURCE_DATE_EPOCH="+strconv.Itoa(sourceDateEpoch), "TZ=UTC", "LC_ALL=C")
}

func (b *builder) run(ctx context.Context, tool string, stdin []byte, args ...string) error {
	c := run.Cmd{Path: b.tools[tool], Args: args, Env: b.env(), Dir: b.work}
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	_, err := run.Run(ctx, c)
	return err
}

// create makes the disk file, size bytes of zeros (sparse).
func (b *builder) create(size int64) error {
	f, err := os.OpenFile(b.disk, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mkfs writes an empty FAT32 file system into the partition at partStart.
func (b *builder) mkfs(ctx context.Context, part int64) error {
	return b.run(ctx, "mkfs.vfat", nil, "--invariant", "-i", b.ids.volumeID, "-F", "32", "-n", "UNIKFILE",
		"--offset="+strconv.Itoa(partStart/512), b.disk, strconv.FormatInt(part/1024, 10))
}

// fat is the mtools name of the file system: the disk at partStart.
func (b *builder) fat() string { return b.disk + "@@" + strconv.Itoa(partStart) }

func (b *builder) copyIn(ctx context.Context, hostPath, fatPath string) error {
	return b.run(ctx, "mcopy", nil, "-i", b.fat(), hostPath, "::"+fatPath)
}

func fileSize(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

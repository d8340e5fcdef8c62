package disk

import (
	"context"
	"debug/pe"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// espType is the GPT partition type of an EFI system partition.
const espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

// bootPath is where UEFI firmware looks for a removable disk's loader on
// x86-64.
const bootPath = "EFI/BOOT/BOOTX64.EFI"

// uefi writes a GPT disk whose EFI system partition holds a unified kernel
// image as the default loader.
func (b *builder) uefi(ctx context.Context) error {
	uki := filepath.Join(b.work, "BOOTX64.EFI")
	if err := b.unifiedKernelImage(ctx, uki); err != nil {
		return fmt.Errorf("unified kernel image: %w", err)
	}
	payload, err := fileSize(uki)
	if err != nil {
		return err
	}
	part := partitionSize(payload)
	if err := b.create(partStart + part + gptTail); err != nil {
		return err
	}
	script := fmt.Sprintf("label: gpt\nlabel-id: %s\nunit: sectors\nfirst-lba: %d\n\nstart=%d, size=%d, type=%s, uuid=%s, name=\"EFI system partition\"\n",
		b.ids.diskGUID, partStart/512, partStart/512, part/512, espType, b.ids.partGUID)
	if err := b.run(ctx, "sfdisk", []byte(script), "--no-reread", "--no-tell-kernel", "-q", b.disk); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if err := b.mkfs(ctx, part); err != nil {
		return fmt.Errorf("format: %w", err)
	}
	if err := b.run(ctx, "mmd", nil, "-i", b.fat(), "::EFI", "::EFI/BOOT"); err != nil {
		return err
	}
	return b.copyIn(ctx, uki, bootPath)
}

// unifiedKernelImage writes systemd's EFI stub with the image's kernel,
// initramfs and command line added as the sections the stub boots from
// (.osrel, .cmdline, .linux, .initrd), each placed after the stub's own
// sections, page-aligned, in that order.
func (b *builder) unifiedKernelImage(ctx context.Context, out string) error {
	img := b.in.Image
	stub := b.tools[or(b.in.Tools.Stub, DefaultStub)]
	end, err := imageEnd(stub)
	if err != nil {
		return fmt.Errorf("EFI stub %s: %w", stub, err)
	}
	osrel := filepath.Join(b.work, "osrel")
	if err := os.WriteFile(osrel, []byte("ID=unikfile\nNAME=\"unikfile "+img.App+"\"\n"), 0o644); err != nil {
		return err
	}
	cmdline := filepath.Join(b.work, "cmdline")
	if err := os.WriteFile(cmdline, []byte(img.Cmdline), 0o644); err != nil {
		return err
	}
	sections := []struct{ name, file string }{
		{".osrel", osrel},
		{".cmdline", cmdline},
		{".linux", b.src(img.Kernel)},
	}
	if img.Initrd != "" {
		sections = append(sections, struct{ name, file string }{".initrd", b.src(img.Initrd)})
	}
	var args []string
	vma := alignPage(end)
	for _, s := range sections {
		n, err := fileSize(s.file)
		if err != nil {
			return err
		}
		args = append(args, "--add-section", s.name+"="+s.file, "--change-section-vma", fmt.Sprintf("%s=%#x", s.name, vma))
		vma = alignPage(vma + uint64(n))
	}
	args = append(args, stub, out)
	if err := b.run(ctx, "objcopy", nil, args...); err != nil {
		return err
	}
	// objcopy stamps the time of the build into the PE header.
	return clearPETimestamp(out)
}

// imageEnd is the first address after the PE image's sections, including
// its image base (objcopy's section addresses are absolute).
func imageEnd(path string) (uint64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	end, err := peImageEnd(fh)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return end, nil
}

// peImageEnd is imageEnd of the PE file in r.
func peImageEnd(r io.ReaderAt) (uint64, error) {
	f, err := pe.NewFile(r)
	if err != nil {
		return 0, err
	}
	var base uint64
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		base = oh.ImageBase
	case *pe.OptionalHeader32:
		base = uint64(oh.ImageBase)
	default:
		return 0, fmt.Errorf("not a PE image with an optional header")
	}
	var end uint64
	for _, s := range f.Sections {
		end = max(end, uint64(s.VirtualAddress)+uint64(max(s.VirtualSize, s.Size)))
	}
	if base+end < base {
		return 0, fmt.Errorf("the image base %#x and sections end past 2^64", base)
	}
	return base + end, nil
}

func alignPage(n uint64) uint64 { return (n + 0xfff) &^ 0xfff }

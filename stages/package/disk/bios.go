package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pack "github.com/unikfile/unikfile/stages/package"
)

// mbrCodeSize is the boot code area of an MBR, before the disk signature
// and the partition table.
const mbrCodeSize = 440

// bios writes an MBR disk whose one bootable FAT32 partition holds
// SYSLINUX, the kernel and the initramfs.
func (b *builder) bios(ctx context.Context) error {
	img := b.in.Image
	var payload int64
	for _, f := range []string{img.Kernel, img.Initrd} {
		if f == "" {
			continue
		}
		n, err := fileSize(b.src(f))
		if err != nil {
			return err
		}
		payload += n
	}
	part := partitionSize(payload)
	if err := b.create(partStart + part); err != nil {
		return err
	}
	script := fmt.Sprintf("label: dos\nlabel-id: %s\nunit: sectors\n\nstart=%d, size=%d, type=c, bootable\n",
		b.ids.mbrID, partStart/512, part/512)
	if err := b.run(ctx, "sfdisk", []byte(script), "--no-reread", "--no-tell-kernel", "-q", b.disk); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if err := b.mkfs(ctx, part); err != nil {
		return fmt.Errorf("format: %w", err)
	}
	conf := syslinuxConfig(img.Initrd != "", img.Cmdline)
	if img.KernelEntry == pack.KernelEntryMultiboot {
		conf = multibootConfig(img.Cmdline)
		for name, f := range map[string]string{"MBOOT.C32": or(b.in.Tools.MBoot, DefaultMBoot), "LIBCOM32.C32": b.in.Tools.libcom32()} {
			if err := b.copyIn(ctx, b.tools[f], name); err != nil {
				return err
			}
		}
	}
	cfg := filepath.Join(b.work, "syslinux.cfg")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := b.copyIn(ctx, b.src(img.Kernel), "KERNEL"); err != nil {
		return err
	}
	if img.Initrd != "" {
		if err := b.copyIn(ctx, b.src(img.Initrd), "INITRD"); err != nil {
			return err
		}
	}
	if err := b.copyIn(ctx, cfg, "SYSLINUX.CFG"); err != nil {
		return err
	}
	if err := b.run(ctx, "syslinux", nil, "--offset", strconv.Itoa(partStart), "--install", b.disk); err != nil {
		return fmt.Errorf("install SYSLINUX: %w", err)
	}
	return b.writeMBRCode()
}

// syslinuxConfig boots the kernel at once, with the image's command line.
func syslinuxConfig(initrd bool, cmdline string) string {
	appendLine := cmdline
	if initrd {
		appendLine = "initrd=/INITRD " + cmdline
	}
	return strings.Join([]string{
		"DEFAULT linux",
		"PROMPT 0",
		"TIMEOUT 0",
		"LABEL linux",
		"  KERNEL /KERNEL",
		"  APPEND " + appendLine,
		"",
	}, "\n")
}

// multibootConfig boots the multiboot kernel at once through mboot.c32,
// with the image's command line after the kernel's name (the multiboot
// command line is the kernel's path and its arguments). COM32 says what
// the file is; with KERNEL, SYSLINUX 6 guesses from the name and took
// MBOOT.C32 for a Linux kernel ("Booting kernel failed: Invalid
// argument").
func multibootConfig(cmdline string) string {
	return strings.Join([]string{
		"DEFAULT multiboot",
		"PROMPT 0",
		"TIMEOUT 0",
		"LABEL multiboot",
		"  COM32 /MBOOT.C32",
		"  APPEND /KERNEL " + cmdline,
		"",
	}, "\n")
}

// writeMBRCode puts SYSLINUX's MBR boot code (which chain-loads the active
// partition) in front of the partition table sfdisk wrote.
func (b *builder) writeMBRCode() error {
	code, err := os.ReadFile(b.tools[or(b.in.Tools.MBR, DefaultMBR)])
	if err != nil {
		return err
	}
	if len(code) > mbrCodeSize {
		code = code[:mbrCodeSize]
	}
	f, err := os.OpenFile(b.disk, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(code, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package rump

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
)

// BakeConfig is the rumprun-bake configuration images are baked with:
// Rumprun's base components (TCP/IP, local sockets, the usual file
// systems) and its virtio drivers (network, block, SCSI-less), which is
// what QEMU/KVM and the other virtio hypervisors give a guest. hw_generic
// adds PCI NICs, USB and audio; unikfile's images have one virtio NIC.
const BakeConfig = "hw_virtio"

// Bake links program, an object the toolchain tc compiled (with its bake
// recipe), into a bootable multiboot kernel at out, without symbols. The
// same program and toolchain give the same bytes. rumprun-bake's output
// goes to log.
func Bake(ctx context.Context, tc *rumprun.Toolchain, program, out string, log io.Writer) error {
	if err := rumprun.CheckProgram(program, filepath.Base(program)); err != nil {
		return err
	}
	r, err := rumprun.Recipe(program)
	if err != nil {
		return err
	}
	if r["tooldir"] != tc.Dir {
		// rumprun-bake links with the tools the program names, and the
		// libraries of the toolchain it runs from: they must agree.
		return fmt.Errorf("the program was compiled with the Rumprun toolchain in %s, and the toolchain found now is %s (%s); build again (the compile cache keys on the toolchain, so this means the toolchain moved)", r["tooldir"], tc.Dir, tc.From)
	}
	if log == nil {
		log = io.Discard
	}
	tmp := out + ".unstripped"
	defer os.Remove(tmp)
	env := tc.Environ(os.Environ())
	if _, err := run.Run(ctx, run.Cmd{Path: tc.Bake(), Args: []string{BakeConfig, tmp, program}, Env: env, Stdout: log, Stderr: log, Hint: rumprun.BuildHint}); err != nil {
		return fmt.Errorf("rumprun-bake %s: %w", BakeConfig, err)
	}
	if _, err := run.Run(ctx, run.Cmd{Path: "strip", Args: []string{"--strip-all", "-o", out, tmp}, Hint: "install binutils: apt-get install binutils"}); err != nil {
		return fmt.Errorf("strip the baked image: %w", err)
	}
	return nil
}

// KernelVersion is the NetBSD version the rump kernels in a baked image
// were built from ("NetBSD 7.99.34"), or "".
func KernelVersion(kernel string) string {
	b, err := os.ReadFile(kernel)
	if err != nil {
		return ""
	}
	const tag = "@(#)NetBSD "
	i := bytes.Index(b, []byte(tag))
	if i < 0 {
		return ""
	}
	rest := b[i+len("@(#)"):]
	end := bytes.IndexAny(rest, " \x00")
	if end < 0 {
		return ""
	}
	if next := bytes.IndexAny(rest[end+1:], " \x00"); next > 0 {
		end += 1 + next
	}
	return string(rest[:end])
}

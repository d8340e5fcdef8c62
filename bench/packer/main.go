// Command packer is the packaging step of the Makefile that bench compares
// unikfile's monorepo builds against: it does what a package node does
// (the same library call), with no planning, hashing or caching, so that
// make decides what to rebuild and this only does the work.
//
//	packer init OUT                       build the guest init
//	packer image NAME APP INIT KERNEL OUT write the kernel+initrd image of the app binary APP
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/guest"
	"github.com/unikfile/unikfile/stages/package/linux"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "packer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx := context.Background()
	switch {
	case len(args) == 2 && args[0] == "init":
		return guest.Build(ctx, "go", args[1])
	case len(args) == 6 && args[0] == "image":
		name, app, initBin, kernel, out := args[1], args[2], args[3], args[4], args[5]
		k, err := linux.ResolveKernel(kernel, "", nil)
		if err != nil {
			return err
		}
		root, err := os.MkdirTemp(filepath.Dir(out), ".rootfs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(root)
		if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
			return err
		}
		if err := os.Link(app, filepath.Join(root, "app", "main")); err != nil {
			return err
		}
		_, err = linux.Build(ctx, linux.Input{
			BundleRoot: root,
			Config:     guest.Config{App: name, Argv: []string{"/app/main"}},
			Kernel:     k,
			InitBinary: initBin,
		}, out)
		return err
	}
	return fmt.Errorf("usage: packer init OUT | packer image NAME APP INIT KERNEL OUT")
}

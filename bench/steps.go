package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/guest"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/linux"
)

// bareInitramfs writes the image with the same library call unikfile
// makes, minus everything around it.
func bareInitramfs(e *env, dir, initBin string) error {
	ctx := context.Background()
	k, err := linux.ResolveKernel(e.kernel, "", nil)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "image")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	_, err = linux.Build(ctx, linux.Input{
		BundleRoot: filepath.Join(dir, "rootfs"),
		Config:     guest.Config{App: "hello", Argv: []string{"/app/main", "-listen", ":8080"}, Ports: []int{8080}},
		Kernel:     k,
		InitBinary: initBin,
	}, out)
	return err
}

// imageCmdline reads the kernel command line an image boots with.
func imageCmdline(imageDir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(imageDir, pack.ImageFile))
	if err != nil {
		return nil, err
	}
	var img pack.Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, err
	}
	return []byte(img.Cmdline), nil
}

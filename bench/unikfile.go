package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// buildUnikfile builds the binary under test as scripts/install-deps
// does: static (CGO_ENABLED=0), so it starts without the dynamic loader.
func buildUnikfile(root, out string) error {
	cmd := exec.Command("go", "build", "-o", out, filepath.Join(root, "cmd", "unikfile"))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build unikfile: %v\n%s", err, b)
	}
	return nil
}

package compile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGoModulePath(t *testing.T) {
	dir := t.TempDir()
	if _, err := GoModulePath(dir); err == nil || !strings.Contains(err.Error(), "go mod init") {
		t.Errorf("no go.mod: %v", err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("// comment\nmodule \"example.com/svc\" // quoted, with a comment\n\ngo 1.22\n")
	if got, err := GoModulePath(dir); err != nil || got != "example.com/svc" {
		t.Errorf("GoModulePath = %q, %v", got, err)
	}
	write("go 1.22\n")
	if _, err := GoModulePath(dir); err == nil || !strings.Contains(err.Error(), "no module path") {
		t.Errorf("go.mod without module: %v", err)
	}
}

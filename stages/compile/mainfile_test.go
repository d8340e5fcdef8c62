package compile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

func TestMainFileStaysInTheSource(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "server"), []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("server", filepath.Join(src, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "outside")); err != nil {
		t.Fatal(err)
	}
	for main, want := range map[string]string{
		"server":           "",
		"inside":           "",
		"outside":          "is a symlink to /etc/hostname, outside the app's source",
		"../../etc/passwd": "must be a path inside the app's source",
		"/bin/sh":          "must be a path inside the app's source",
	} {
		_, err := mainFile(&lang.App{Source: src, Main: main})
		switch {
		case want == "" && err != nil:
			t.Errorf("main %q: %v", main, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("main %q: error %v, want %q", main, err, want)
		}
	}
}

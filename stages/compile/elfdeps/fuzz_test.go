package elfdeps

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadELF: the reader of interpreters and DT_NEEDED/RUNPATH/RPATH
// never panics, whatever the file holds, and what it returns is usable
// (an absolute interpreter, no empty library name).
func FuzzReadELF(f *testing.F) {
	for _, p := range []string{"/usr/bin/true", "/bin/true", "/usr/lib/x86_64-linux-gnu/libpthread.so.0"} {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
			f.Add(b)
		}
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte("#!/bin/sh\necho not elf\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := readELF(bytes.NewReader(b))
		if err != nil {
			return
		}
		if info.interp != "" && !path.IsAbs(info.interp) {
			t.Fatalf("interpreter %q", info.interp)
		}
	})
}

// FuzzLdSoConf: the loader configuration reader ends (includes nest at
// most ten deep, even an include of itself) and keeps absolute, clean
// directories only.
func FuzzLdSoConf(f *testing.F) {
	f.Add("include /etc/ld.so.conf.d/*.conf\n/usr/local/lib\n")
	f.Add("# comment\n/opt/lib # trailing\n\nrelative/dir\n/a//b/../c\n")
	f.Add("include *\n/self\n")
	f.Fuzz(func(t *testing.T, conf string) {
		// The configuration is read in a root of its own: includes
		// resolve there, never in the host's / (whose /proc holds
		// regular files that block when read, such as /proc/kmsg: an
		// input of include /**c/* hung the host's reader).
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "etc", "ld.so.conf.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "etc", "ld.so.conf.d", "x.conf"), []byte("/x/lib\n"), 0o644)
		if err := os.WriteFile(filepath.Join(root, "etc", "ld.so.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs, err := ReadLdSoConfFrom(Dir(root), "/etc/ld.so.conf")
		if err != nil && !strings.Contains(err.Error(), "nest too deep") && !strings.Contains(err.Error(), "token too long") {
			t.Fatalf("unexpected error: %v", err)
		}
		for _, d := range dirs {
			if !path.IsAbs(d) || path.Clean(d) != d {
				t.Fatalf("directory %q", d)
			}
		}
	})
}

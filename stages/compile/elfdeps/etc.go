package elfdeps

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// etcFiles are what programs linked against the C library read at run
// time besides their libraries: the name-service switch (files, then DNS;
// glibc has both built in since 2.34), and a user and group database with
// root and nobody, so that getpwuid(0) and "~" work. /etc/hosts,
// /etc/resolv.conf and the CA certificates come from the linux base and
// its init.
var etcFiles = map[string]string{
	"etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
	"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	"etc/group":         "root:x:0:\nnogroup:x:65534:\n",
}

// EtcFiles writes the files of /etc that dynamic programs expect into
// root, leaving alone any the bundle already has, and creates /root (the
// home directory of root).
func EtcFiles(root string) error {
	for rel, content := range etcFiles {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if _, err := os.Lstat(p); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(root, "root"), 0o755)
}

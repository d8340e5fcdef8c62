package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Rewrite replaces the content of the existing file at path and keeps the
// file's identity: a symlink is followed and the file it points to is
// rewritten (the link stays a link), and the file keeps its owner, group
// and mode. A file with one link is replaced atomically (a temporary file
// in its folder, given its owner and mode, renamed over it); a file with
// several hard links is written in place, so that every link sees the
// new content (a crash during that write can leave it partly written).
func Rewrite(path string, data []byte) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && st.Nlink > 1 {
		return inPlace(real, data)
	}
	err = replace(real, data, func(tmp *os.File) error {
		if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
			return err
		}
		if ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
			return tmp.Chown(int(st.Uid), int(st.Gid))
		}
		return nil
	})
	if errors.Is(err, os.ErrPermission) {
		// Not allowed to give the new file the old one's owner: writing
		// in place keeps it.
		return inPlace(real, data)
	}
	return err
}

// inPlace writes data over the file at path and cuts it to data's length.
func inPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

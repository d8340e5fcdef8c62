// Package atomicfile writes files so that readers see the old content or
// the new, never a part: a temporary file in the same folder, synced, then
// renamed over the target. It knows nothing about what the files hold.
package atomicfile

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically, creating path's folder if needed.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return replace(path, data, func(tmp *os.File) error { return tmp.Chmod(perm) })
}

// replace writes data into a temporary file in path's folder, lets prepare
// set its mode (and owner), syncs it and renames it over path.
func replace(path string, data []byte, prepare func(tmp *os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename this finds nothing
	_, err = tmp.Write(data)
	if err == nil {
		err = prepare(tmp)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteJSON writes v as indented JSON to path atomically.
func WriteJSON(path string, v any, perm os.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(path, append(data, '\n'), perm)
}

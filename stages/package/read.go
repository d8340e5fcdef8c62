package pack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ReadImage reads the description (ImageFile) of the image in dir.
func ReadImage(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, ImageFile))
	if err != nil {
		return nil, err
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ImageFile), err)
	}
	return &img, nil
}

// FileDigest returns the hex SHA-256 of the file at p and its size: the
// digest and size an Image records for the file it describes.
func FileDigest(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/unikfile/unikfile/internal/stamp"
)

// Facts remembers, across runs, what a tool says about itself (`go env`'s
// version and settings, say): asking takes a process start, often longer
// than the rest of a one-file rebuild. An answer is kept under a question
// (the command and what of the environment it reads) and the metadata of
// the files that decide the answer (the tool's binary, its settings
// file), and used only while every one of them has the same metadata,
// outside the racy window; otherwise the tool is asked again.
//
// A fact is a cache of a cache: it is written without fsync, and a lost or
// torn one (the JSON does not parse, or names another question) only means
// asking again.
type Facts struct {
	dir string
	now func() time.Time // for tests
}

// Facts is the store's record of tool answers (in <cache>/facts).
func (s *Store) Facts() *Facts { return FactsIn(filepath.Join(s.dir, "facts")) }

// FactsIn is a record of tool answers in dir, for a folder that is not
// opened as a Store on the path that asks.
func FactsIn(dir string) *Facts { return &Facts{dir: dir} }

type fact struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// Get returns the answer to question, from the record when files have
// not changed since it was made, else from ask (and records it).
func (f *Facts) Get(question string, files []string, ask func() (string, error)) (string, error) {
	if f == nil {
		return ask()
	}
	key, trusted := f.key(question, files)
	if key == "" {
		return ask()
	}
	path := filepath.Join(f.dir, key)
	if b, err := os.ReadFile(path); err == nil {
		var fa fact
		if json.Unmarshal(b, &fa) == nil && fa.Question == question {
			return fa.Answer, nil
		}
	}
	answer, err := ask()
	if err != nil || !trusted {
		return answer, err
	}
	if b, err := json.Marshal(fact{question, answer}); err == nil {
		_ = writeFact(path, b)
	}
	return answer, nil
}

// key digests the question and the files' metadata; trusted is false
// when a file changed within the racy window (its metadata may not yet
// tell a later change from this state), so the answer must not be kept.
func (f *Facts) key(question string, files []string) (key string, trusted bool) {
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", question)
	trusted = true
	for _, p := range files {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "%s missing\x00", strconv.Quote(p))
			continue
		}
		e, ok := stamp.Entry{}, err == nil
		if ok {
			e, ok = stamp.Meta(fi, 0)
		}
		if !ok {
			return "", false // unreadable: never recorded, the key unused
		}
		e.Recorded = now().UnixNano()
		if e.Racy(0) {
			trusted = false
		}
		fmt.Fprintf(h, "%s %d %d %d %d %d %o\x00", strconv.Quote(p), e.Size, e.Mtime, e.Ctime, e.Ino, e.Dev, e.Mode)
	}
	return hex.EncodeToString(h.Sum(nil)), trusted
}

// writeFact writes b to path by rename, so a reader sees it whole or not
// at all.
func writeFact(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

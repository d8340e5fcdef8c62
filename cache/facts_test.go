package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A fact is asked once and then answered from the record while the files
// that decide it keep their metadata; a change to one of them, another
// question, or a torn record means asking again.
func TestFactsAnswerUntilAFileChanges(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "tool")
	os.WriteFile(tool, []byte("v1"), 0o755)
	later := time.Now().Add(time.Minute) // the file's change is outside the racy window
	f := &Facts{dir: filepath.Join(dir, "facts"), now: func() time.Time { return later }}
	asked := 0
	ask := func(answer string) func() (string, error) {
		return func() (string, error) { asked++; return answer, nil }
	}
	for i, want := range []string{"one", "one"} {
		if got, err := f.Get("version?", []string{tool}, ask("one")); err != nil || got != want {
			t.Fatalf("get %d: %q, %v", i, got, err)
		}
	}
	if asked != 1 {
		t.Fatalf("asked %d times for an unchanged tool, want once", asked)
	}
	if got, _ := f.Get("settings?", []string{tool}, ask("two")); got != "two" || asked != 2 {
		t.Errorf("another question: %q after %d asks", got, asked)
	}
	os.WriteFile(tool, []byte("v2 longer"), 0o755)
	if got, _ := f.Get("version?", []string{tool}, ask("three")); got != "three" || asked != 3 {
		t.Errorf("after the tool changed: %q after %d asks", got, asked)
	}
	// A torn record is not an answer.
	ents, _ := os.ReadDir(f.dir)
	for _, e := range ents {
		os.WriteFile(filepath.Join(f.dir, e.Name()), []byte(`{"question":"vers`), 0o644)
	}
	if got, _ := f.Get("version?", []string{tool}, ask("four")); got != "four" || asked != 4 {
		t.Errorf("after the record was torn: %q after %d asks", got, asked)
	}
}

// A file changed within the racy window may change again without its
// metadata showing it: the answer is used but not kept.
func TestFactsDoNotKeepAnswersOfRacyFiles(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "tool")
	os.WriteFile(tool, []byte("v1"), 0o755)
	f := &Facts{dir: filepath.Join(dir, "facts"), now: time.Now}
	asked := 0
	for range 2 {
		f.Get("version?", []string{tool}, func() (string, error) { asked++; return "one", nil })
	}
	if asked != 2 {
		t.Errorf("asked %d times about a file changed just now, want every time", asked)
	}
	// A missing file is part of the key: it appearing changes the key.
	f.now = func() time.Time { return time.Now().Add(time.Minute) }
	gone := filepath.Join(dir, "settings")
	f.Get("q", []string{gone}, func() (string, error) { return "without", nil })
	os.WriteFile(gone, []byte("GOFLAGS=-x"), 0o644)
	if got, _ := f.Get("q", []string{gone}, func() (string, error) { return "with", nil }); got != "with" {
		t.Errorf("a settings file that appeared: %q", got)
	}
}

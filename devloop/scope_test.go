package devloop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
)

// A project with two apps: api at the root (ignoring docs/) and web in web/.
func testScope(t *testing.T) (*scope, string) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.WriteFile(filepath.Join(dir, ".unikignore"), []byte("docs/\n*.md\n"), 0o644)
	p := &lang.Project{File: filepath.Join(dir, "Unikfile"), Dir: dir, Apps: []*lang.App{
		{Name: "api", Source: dir},
		{Name: "web", Source: filepath.Join(dir, "web")},
	}}
	sc, err := newScope(p, []string{"api", "web"}, []string{filepath.Join(dir, ".cache")})
	if err != nil {
		t.Fatal(err)
	}
	return sc, dir
}

func TestScopeMapsPathsToApps(t *testing.T) {
	sc, dir := testScope(t)
	for _, c := range []struct {
		path string
		want []string
	}{
		{"main.go", []string{"api"}},
		{"web/main.go", []string{"api", "web"}}, // api's source is the whole project
		{"docs/x.go", nil},
		{"README.md", nil},
		{"Unikfile", nil}, // never a compile input; it reloads the project instead
		{".", []string{"api", "web"}},
	} {
		got := sc.affected(filepath.Join(dir, c.path))
		if !slices.Equal(got, c.want) {
			t.Errorf("affected(%s) = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestScopeFiltersWhatIsWatched(t *testing.T) {
	sc, dir := testScope(t)
	for _, c := range []struct {
		path    string
		isDir   bool
		ignored bool
	}{
		{"Unikfile", false, false},
		{"main.go", false, false},
		{"web", true, false},
		{"docs", true, true},
		{".cache", true, true},
		{".cache/x", false, true},
		{"notes.md", false, true},
	} {
		if got := sc.ignored(filepath.Join(dir, c.path), c.isDir); got != c.ignored {
			t.Errorf("ignored(%s) = %v, want %v", c.path, got, c.ignored)
		}
	}
	if !sc.ignoreFile(filepath.Join(dir, ".unikignore")) || !sc.ignoreFile(filepath.Join(dir, "web", ".dockerignore")) {
		t.Error("ignore files of app sources are not recognised")
	}
}

// direct stands for the settings of a provider that reaches apps at their
// own address (a cloud), which watch cannot serve.
type direct struct{}

func (direct) Forwards([]int) ([]lang.Forward, bool) { return nil, false }
func (direct) Redeploy() any                         { return nil }

func TestPickTarget(t *testing.T) {
	p := &lang.Project{File: "/p/Unikfile", Targets: []*lang.Target{
		{Name: "dev", Provider: "qemu", Settings: qemu.DefaultSettings()},
		{Name: "prod", Provider: "aws", Settings: direct{}},
	}}
	if tg, err := pickTarget(p, ""); err != nil || tg.Name != "dev" {
		t.Fatalf("only QEMU target: %v, %v", tg, err)
	}
	if _, err := pickTarget(p, "prod"); err == nil {
		t.Fatal("an aws target was accepted")
	}
	if _, err := pickTarget(p, "nope"); err == nil {
		t.Fatal("an unknown target was accepted")
	}
	p.Targets = append(p.Targets, &lang.Target{Name: "dev2", Provider: "qemu", Settings: qemu.DefaultSettings()})
	if _, err := pickTarget(p, ""); err == nil {
		t.Fatal("two QEMU targets and no name: want an error naming them")
	}
	p.Targets[2].Imports = []lang.AppRef{{Path: "services/api", Name: "api"}}
	if _, err := pickTarget(p, "dev2"); err == nil || !strings.Contains(err.Error(), "services/api:api") || !strings.Contains(err.Error(), "unikfile up") {
		t.Fatalf("a target with apps of another Unikfile: want an error naming the reference and what to do, got %v", err)
	}
}

func TestEventJSON(t *testing.T) {
	b, err := json.Marshal(Event{Kind: EventSwapped, App: "hello", Duration: 1500 * time.Millisecond, Boot: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["event"] != "swapped" || m["app"] != "hello" || m["duration_ms"] != 1500.0 || m["boot_ms"] != 1000.0 {
		t.Fatalf("event JSON: %s", b)
	}
}

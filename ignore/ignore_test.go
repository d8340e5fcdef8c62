package ignore

import "testing"

func TestMatch(t *testing.T) {
	m, err := New(append(Builtin, "*.log", "/build/", "docs/**/*.md", "!keep.log", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		dir  bool
		want bool
	}{
		{".git", true, true},
		{"sub/.git", true, true},
		{".git", false, false}, // a file named .git (worktree link) is an input
		{"main.go", false, false},
		{"main.go~", false, true},
		{".main.go.swp", false, true},
		{"4913", false, true},
		{"a/b/x.log", false, true},
		{"keep.log", false, false},
		{"build", true, true},
		{"sub/build", true, false},
		{"build", false, false},
		{"docs/a/b/c.md", false, true},
		{"docs/c.md", false, true},
		{"docs/c.txt", false, false},
		{"x/tmp", true, true},
		{"x/tmp", false, true},
		{"Unikfile", false, true},
		{"sub/Unikfile", false, false},
	} {
		if got := m.Match(c.path, c.dir); got != c.want {
			t.Errorf("Match(%q, dir=%v) = %v, want %v", c.path, c.dir, got, c.want)
		}
	}
}

func TestBadPattern(t *testing.T) {
	if _, err := New([]string{"ok", "[z-a"}); err == nil {
		t.Fatal("want an error for a malformed pattern")
	}
}

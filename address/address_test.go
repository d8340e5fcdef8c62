package address

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/registry"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in        string
		dir, name string
		rec       bool
		plain     bool
		err       string
	}{
		{in: "dev", dir: ".", name: "dev", plain: true},
		{in: ":dev", dir: ".", name: "dev", plain: true},
		{in: "services/api", dir: "services/api"},
		{in: "services/api:dev", dir: "services/api", name: "dev"},
		{in: "./services/api/:dev", dir: "services/api", name: "dev"},
		{in: "./...", dir: ".", rec: true},
		{in: "...", dir: ".", rec: true},
		{in: "./...:prod", dir: ".", name: "prod", rec: true},
		{in: "services/...", dir: "services", rec: true},
		{in: ".", dir: "."},
		{in: "..", dir: ".."},
		{in: "../other:x", dir: "../other", name: "x"},
		{in: "a:b:c", err: "more than one colon"},
		{in: "services/api:", err: "ends in a colon"},
		{in: "/abs:dev", err: "relative to the project directory"},
		{in: "serv.../x", err: "... stands only at the end"},
		{in: "services/api:9x", err: "is not a target or app name"},
		{in: "", err: "empty address"},
	} {
		a, err := Parse(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Parse(%q): error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if a.Dir != c.dir || a.Name != c.name || a.Recursive != c.rec || a.Plain != c.plain {
			t.Errorf("Parse(%q) = %+v", c.in, a)
		}
	}
}

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSelect(t *testing.T) {
	root := t.TempDir()
	svc := func(app string) string {
		return "app \"" + app + "\" {\n  language = \"go\"\n}\ntarget \"dev\" {\n  provider = \"qemu\"\n  apps = [app." + app + "]\n}\n"
	}
	write(t, root, map[string]string{
		"Unikfile":         "target \"prod\" {\n  provider = \"qemu\"\n  apps = [\"svc/a:a\", \"svc/b:b\"]\n}\n",
		"svc/a/Unikfile":   svc("a"),
		"svc/b/Unikfile":   svc("b"),
		"other/c/Unikfile": svc("c"),
	})
	load := func(args ...string) (*lang.Workspace, []Address) {
		addrs, err := ParseAll(args)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Files(root, filepath.Join(root, "Unikfile"), addrs, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, _, diags := lang.LoadWorkspace(root, files, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return w, addrs
	}
	apps := func(args ...string) string {
		w, addrs := load(args...)
		got, err := Apps(w, root, root, addrs)
		if err != nil {
			return "error: " + err.Error()
		}
		var s []string
		for _, pa := range got {
			s = append(s, w.Rel(pa.Project)+":"+pa.App.Name)
		}
		return strings.Join(s, " ")
	}
	targets := func(args ...string) string {
		w, addrs := load(args...)
		got, err := Targets(w, root, root, addrs)
		if err != nil {
			return "error: " + err.Error()
		}
		var s []string
		for _, pt := range got {
			s = append(s, w.Rel(pt.Project)+":"+pt.Target.Name)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct{ got, want string }{
		{apps("./..."), "other/c:c svc/a:a svc/b:b"},
		{apps("prod"), "svc/a:a svc/b:b"},
		{apps("./...:prod"), "svc/a:a svc/b:b"},
		{apps("svc/...", "svc/a:a"), "svc/a:a svc/b:b"},
		{apps("svc/a:nope"), "error: no app or target named \"nope\""},
		{apps("./...:nope"), "error: address \"./...:nope\" matches no app"},
		{targets(), ".:prod"},
		{targets("./...:dev"), "other/c:dev svc/a:dev svc/b:dev"},
		{targets("./..."), ".:prod other/c:dev svc/a:dev svc/b:dev"},
		{targets("svc/b:dev", "dev"), "error: no target named \"dev\""},
	} {
		if !strings.HasPrefix(c.got, c.want) {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestAffected(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		"svc/a/go.mod":      "module a\n\ngo 1.22\n\nreplace example.com/lib => ../../lib\n",
		"svc/a/main.go":     "package main\n",
		"svc/a/.unikignore": "docs/\n",
		"svc/b/go.mod":      "module b\n\ngo 1.22\n",
		"lib/lib.go":        "package lib\n",
		"svc/Unikfile":      "app \"a\" {\n  source = \"./a\"\n  language = \"go\"\n}\napp \"b\" {\n  source = \"./b\"\n  language = \"go\"\n}\n",
		"other/Unikfile":    "app \"c\" {\n  language = \"go\"\n}\n",
	})
	files, _ := lang.Discover(root)
	w, _, diags := lang.LoadWorkspace(root, files, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	all, _ := Apps(w, root, root, []Address{{Raw: "./...", Dir: ".", Recursive: true}})
	affected := func(changed ...string) string {
		var abs []string
		for _, c := range changed {
			abs = append(abs, filepath.Join(root, c))
		}
		hit, err := Affected(all, abs)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, pa := range all {
			if hit[pa.App] {
				names = append(names, pa.App.Name)
			}
		}
		return strings.Join(names, " ")
	}
	for _, c := range []struct {
		changed []string
		want    string
	}{
		{[]string{"svc/a/main.go"}, "a"},
		{[]string{"svc/a/docs/x.md"}, ""}, // ignored by a's .unikignore
		{[]string{"lib/lib.go"}, "a"},     // a replace directive of a
		{[]string{"svc/Unikfile"}, "a b"},
		{[]string{"other/notes.txt", "svc/b/new.go"}, "c b"},
		{[]string{"README.md"}, ""},
	} {
		if got := affected(c.changed...); got != c.want {
			t.Errorf("changed %v: affected %q, want %q", c.changed, got, c.want)
		}
	}
}

func TestTargetsAffected(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		"svc/a/main.go": "package main\n",
		"svc/b/main.go": "package main\n",
		"svc/Unikfile":  "app \"a\" {\n  source = \"./a\"\n  language = \"go\"\n}\napp \"b\" {\n  source = \"./b\"\n  language = \"go\"\n}\ntarget \"b\" {\n  provider = \"qemu\"\n  apps = [app.b]\n}\n",
		"Unikfile":      "target \"prod\" {\n  provider = \"qemu\"\n  apps = [\"svc:a\"]\n}\n",
	})
	files, _ := lang.Discover(root)
	w, _, diags := lang.LoadWorkspace(root, files, lang.Options{Environ: []string{}, Catalog: registry.Catalog()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	all, err := Targets(w, root, root, []Address{{Raw: "./...", Dir: ".", Recursive: true}})
	if err != nil {
		t.Fatal(err)
	}
	names := func(changed string) string {
		got, err := targetsAffected(w, all, []string{filepath.Join(root, changed)})
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, pt := range got {
			n = append(n, pt.Target.Name)
		}
		return strings.Join(n, " ")
	}
	if got := names("svc/a/main.go"); got != "prod" {
		t.Errorf("an edit of a: targets %q, want prod (which imports a)", got)
	}
	if got := names("svc/b/main.go"); got != "b" {
		t.Errorf("an edit of b: targets %q, want b", got)
	}
	if got := names("README.md"); got != "" {
		t.Errorf("an unrelated edit: targets %q", got)
	}
}

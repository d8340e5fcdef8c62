package lang_test

import (
	"fmt"
	. "github.com/unikfile/unikfile/lang"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// tree writes files (path -> content) under a new temp dir and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const apiUnikfile = "app \"api\" {\n  language = \"go\"\n  ports    = [8080]\n}\n"

func TestDiscoverSkipsVCSAndIgnoredFolders(t *testing.T) {
	root := tree(t, map[string]string{
		"Unikfile":                 "",
		"services/api/Unikfile":    "",
		"services/web/Unikfile":    "",
		".git/Unikfile":            "",
		"vendor/x/Unikfile":        "",
		"build/out/Unikfile":       "",
		"services/api/notUnikfile": "",
		".unikignore":              "build/\n",
	})
	got, err := Discover(root)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, p := range got {
		r, _ := filepath.Rel(root, p)
		rel = append(rel, filepath.ToSlash(r))
	}
	want := []string{"Unikfile", "services/api/Unikfile", "services/web/Unikfile", "vendor/x/Unikfile"}
	if !reflect.DeepEqual(rel, want) {
		t.Errorf("Discover = %v, want %v", rel, want)
	}
}

func TestWorkspaceResolvesReferences(t *testing.T) {
	root := tree(t, map[string]string{
		"services/api/Unikfile": apiUnikfile,
		"Unikfile": `app "web" {
  language = "go"
  ports    = [9090]
}
target "prod" {
  provider = "qemu"
  apps     = [app.web, "services/api:api"]
  qemu {
    host_ports = { 8080 = 18080 }
  }
}
`,
	})
	// Only the root is named: the referenced Unikfile is loaded too.
	w, _, diags := LoadWorkspace(root, []string{filepath.Join(root, FileName)}, Options{Catalog: catalog, Environ: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(w.Projects) != 2 {
		t.Fatalf("%d projects, want 2", len(w.Projects))
	}
	p := w.Project(root)
	var names []string
	for _, pa := range w.TargetApps(p, p.Target("prod")) {
		names = append(names, w.Rel(pa.Project)+":"+pa.App.Name)
	}
	if got := strings.Join(names, " "); got != ".:web services/api:api" {
		t.Errorf("prod runs %s", got)
	}
}

func TestWorkspaceErrorsNameBothFiles(t *testing.T) {
	for _, c := range []struct {
		name, ref, extra string
		want             []string
	}{
		{"missing app", `"services/api:apii"`, "", []string{"Reference to undeclared app", "services/api/Unikfile:1:1", `declares no app named "apii"; declared apps: api. Did you mean "api"?`}},
		{"missing Unikfile", `"services/apx:api"`, "", []string{"Reference to a missing Unikfile", "services/apx/Unikfile, which does not exist"}},
		{"own directory", `".:api"`, "", []string{"Invalid app reference", "names this Unikfile's own directory; write app.api"}},
		{"bad name", `"services/api:9"`, "", []string{"Invalid app reference", `does not end in an app name`}},
		{"name clash", `app.api, "services/api:api"`, "app \"api\" {\n  language = \"go\"\n}\n", []string{"Two apps with one name in a target", `already runs an app named "api" (app.api)`}},
		{"port clash", `app.other, "services/api:api"`, "app \"other\" {\n  language = \"go\"\n  ports = [8080]\n}\n", []string{"Host port used twice", "host port 8080"}},
		{"a folder named Unikfile", `"odd:web"`, "", []string{"Reference to an unreadable Unikfile", "odd/Unikfile", "is a directory, not a Unikfile"}},
		{"a file for a folder", `"services/api/main.go:web"`, "", []string{"Reference to a missing Unikfile", "services/api/main.go/Unikfile, which does not exist"}},
		{"own directory through a symlink", `"self:api"`, "", []string{"Invalid app reference", "names this Unikfile's own directory"}},
		{"a FIFO for the other Unikfile", `"pipe:api"`, "", []string{"Reference to an unreadable Unikfile", "not a regular file (a FIFO)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := tree(t, map[string]string{
				"services/api/Unikfile": apiUnikfile,
				"services/api/main.go":  "package main\n",
				"odd/Unikfile/x":        "",
				"Unikfile":              c.extra + "target \"prod\" {\n  provider = \"qemu\"\n  apps     = [" + c.ref + "]\n}\n",
			})
			if err := os.Symlink(".", filepath.Join(root, "self")); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, "pipe"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(filepath.Join(root, "pipe", FileName), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(root)
			_, _, diags := LoadWorkspace(root, []string{FileName}, Options{Catalog: catalog, Environ: noEnv})
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			d := diags[0]
			text := d.Summary + ": " + d.Detail
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q lacks %q", text, w)
				}
			}
			if d.Subject == nil || d.Subject.Filename != "Unikfile" {
				t.Errorf("the error is not at the reference: %v", d.Subject)
			}
		})
	}
}

func TestWorkspaceReportsEveryFile(t *testing.T) {
	root := tree(t, map[string]string{
		"a/Unikfile": "app \"a\" {\n  language = \"go\"\n  colour = 1\n}\n",
		"b/Unikfile": "app \"b\" {\n  language = \"cobol\"\n}\n",
		"c/Unikfile": apiUnikfile,
	})
	t.Chdir(root)
	files, _ := Discover(".")
	_, _, diags := LoadWorkspace(".", files, Options{Catalog: catalog, Environ: noEnv})
	var at []string
	for _, d := range diags {
		at = append(at, fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column))
	}
	if want := []string{"a/Unikfile:3:3", "b/Unikfile:2:14"}; !reflect.DeepEqual(at, want) {
		t.Errorf("diagnostics at %v, want %v", at, want)
	}
}

func TestWorkspaceVariables(t *testing.T) {
	root := tree(t, map[string]string{
		"a/Unikfile": "variable \"port\" {\n  default = 1\n}\napp \"a\" {\n  language = \"go\"\n  ports = [var.port]\n}\n",
		"b/Unikfile": apiUnikfile,
	})
	files := []string{filepath.Join(root, "a", FileName), filepath.Join(root, "b", FileName)}
	w, _, diags := LoadWorkspace(root, files, Options{Catalog: catalog, Vars: map[string]string{"port": "7070"}, Environ: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := w.Projects[0].Apps[0].Ports; !reflect.DeepEqual(got, []int{7070}) {
		t.Errorf("--var port reached a as %v", got)
	}
	_, _, diags = LoadWorkspace(root, files, Options{Catalog: catalog, Vars: map[string]string{"prot": "1"}, Environ: noEnv})
	if !diags.HasErrors() || !strings.Contains(diags[0].Detail, `None of the 2 Unikfiles declares a variable named "prot"`) {
		t.Errorf("an undeclared --var: %v", diags)
	}
}

func TestWorkspaceRejectsTwoUnikfilesInOneFolder(t *testing.T) {
	root := tree(t, map[string]string{"Unikfile": apiUnikfile, "prod.unikfile": apiUnikfile})
	_, _, diags := LoadWorkspace(root, []string{filepath.Join(root, "prod.unikfile"), filepath.Join(root, FileName)}, Options{Catalog: catalog, Environ: noEnv})
	if !diags.HasErrors() || diags[0].Summary != "Two Unikfiles in one folder" {
		t.Errorf("diagnostics: %v", diags)
	}
}

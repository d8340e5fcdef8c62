package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/graph"
	"github.com/unikfile/unikfile/lang"
)

// A workspace of three Unikfiles: services/api and services/web declare
// apps, the root's prod target runs both, and web's dev target runs web.
func threeProjects() (*lang.Workspace, *lang.Project, *lang.Project, *lang.Project) {
	api := &lang.Project{Dir: "/w/services/api", Apps: []*lang.App{{Name: "api", Language: "go", Base: "linux"}}}
	web := &lang.Project{Dir: "/w/services/web", Apps: []*lang.App{{Name: "web", Language: "go", Base: "linux"}}}
	web.Targets = []*lang.Target{{Name: "dev", Provider: "qemu", Apps: []string{"web"}}}
	root := &lang.Project{Dir: "/w", Targets: []*lang.Target{{Name: "prod", Provider: "qemu",
		Imports: []lang.AppRef{{Path: "services/api", Dir: "/w/services/api", Name: "api"}, {Path: "services/web", Dir: "/w/services/web", Name: "web"}}}}}
	return &lang.Workspace{Root: "/w", Projects: []*lang.Project{root, api, web}}, root, api, web
}

func TestWorkspaceGraphNamespacesAndShares(t *testing.T) {
	w, root, _, web := threeProjects()
	pl := WorkspaceUpGraph(w, []lang.ProjectTarget{{Project: root, Target: root.Targets[0]}, {Project: web, Target: web.Targets[0]}}, &Env{})
	if err := pl.Graph.Validate(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range pl.Graph.Nodes() {
		ids = append(ids, n.ID)
	}
	want := []string{
		"build guest init",
		"compile services/api:api", "package services/api:api (linux, kernel+initrd)",
		"compile services/web:web", "package services/web:web (linux, kernel+initrd)",
		"deploy .:prod", "deploy services/web:dev",
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	if pl.Deploys[root.Targets[0]] != "deploy .:prod" {
		t.Errorf("deploy of prod is %q", pl.Deploys[root.Targets[0]])
	}
}

func TestSingleProjectKeepsPlainIDs(t *testing.T) {
	p := &lang.Project{Dir: "/p", Apps: []*lang.App{{Name: "a", Language: "go", Base: "linux"}}}
	w := &lang.Workspace{Root: "/p", Projects: []*lang.Project{p}}
	pl := WorkspaceBuildGraph(w, []lang.ProjectApp{{Project: p, App: p.Apps[0]}}, &Env{}, "", "")
	var ids []string
	for _, n := range pl.Graph.Nodes() {
		ids = append(ids, n.ID)
	}
	if got := strings.Join(ids, ", "); got != "build guest init, compile a, package a (linux, kernel+initrd)" {
		t.Errorf("nodes: %s", got)
	}
}

// A renamed node's work still finds its dependencies' outputs under the
// names it was written with.
func TestRenamedNodeSeesOriginalDependencyIDs(t *testing.T) {
	g := graph.New()
	rename := func(id string) string { return "x/" + id }
	g.Add(renamed(&graph.Node{ID: "a", Run: func(context.Context, map[string]any) (any, bool, error) { return 41, false, nil }}, rename))
	g.Add(renamed(&graph.Node{ID: "b", Deps: []string{"a"}, Run: func(_ context.Context, in map[string]any) (any, bool, error) {
		v, ok := in["a"].(int)
		if !ok {
			t.Errorf("b got %v", in)
		}
		return v + 1, false, nil
	}}, rename))
	res, err := g.Run(context.Background(), graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res["x/b"].Output != 42 {
		t.Errorf("b = %v", res["x/b"].Output)
	}
}

// An app whose source folder holds a path that changed since the last
// identical build has a Likely compile (it runs first); one whose folder
// only shares a prefix with it does not.
func TestChangedSourceMakesItsCompileLikely(t *testing.T) {
	w, _, api, web := threeProjects()
	api.Apps[0].Source, web.Apps[0].Source = "/w/services/api", "/w/services/web"
	apps := []lang.ProjectApp{{Project: api, App: api.Apps[0]}, {Project: web, App: web.Apps[0]}}
	for _, tt := range []struct {
		changed []string
		likely  string
	}{
		{[]string{"/w/services/web/main.go"}, "compile services/web:web"},
		{[]string{"/w/services/api"}, "compile services/api:api"},
		{[]string{"/w/services/api2/main.go", "/w/services/webapp/x"}, ""},
		{nil, ""},
	} {
		pl := WorkspaceBuildGraph(w, apps, &Env{Changed: tt.changed}, "", "")
		var likely []string
		for _, n := range pl.Graph.Nodes() {
			if n.Likely {
				likely = append(likely, n.ID)
			}
		}
		if got := strings.Join(likely, ", "); got != tt.likely {
			t.Errorf("changed %v: likely nodes %q, want %q", tt.changed, got, tt.likely)
		}
	}
}

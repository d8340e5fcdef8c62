package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

func TestSharedAppIsOneCompileAndOnePackage(t *testing.T) {
	p := &lang.Project{
		Dir: "/p",
		Apps: []*lang.App{
			{Name: "api", Language: "go", Base: "linux"},
			{Name: "web", Language: "go", Base: "linux"},
		},
		Targets: []*lang.Target{
			{Name: "dev", Provider: "qemu", Apps: []string{"api", "web"}},
			{Name: "staging", Provider: "qemu", Apps: []string{"api"}},
		},
	}
	g := UpGraph(p, p.Targets, &Env{})
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var ids []string
	for _, n := range g.Nodes() {
		ids = append(ids, n.ID)
		count[strings.Fields(n.ID)[0]]++
	}
	// One init, one compile and one package per app, one deploy per target.
	want := map[string]int{"build": 1, "compile": 2, "package": 2, "deploy": 2}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%d %s nodes, want %d (nodes: %v)", count[k], k, v, ids)
		}
	}
	for _, n := range g.Nodes() {
		if n.ID == DeployID("staging") {
			if len(n.Deps) != 1 || !strings.HasPrefix(n.Deps[0], "package api") {
				t.Errorf("deploy staging depends on %v, want the api package only", n.Deps)
			}
		}
		if strings.HasPrefix(n.ID, "package api") && !slices.Contains(n.Deps, "compile api") {
			t.Errorf("package api does not depend on compile api: %v", n.Deps)
		}
	}
}

func TestBuildGraphHasNoDeploy(t *testing.T) {
	p := &lang.Project{Dir: "/p", Apps: []*lang.App{{Name: "a", Language: "go", Base: "linux"}}}
	for _, n := range BuildGraph(p, p.Apps, &Env{}).Nodes() {
		if strings.HasPrefix(n.ID, "deploy") {
			t.Fatalf("build must not deploy: %s", n.ID)
		}
	}
}

package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/package/linux"
)

func minimalApp(name, language string) *lang.App {
	return &lang.App{Name: name, Language: language, Base: "linux", BaseSettings: &linux.Settings{Kernel: linux.KernelMinimal}}
}

// Apps with the same needs share one kernel node (every language has the
// same needs on one platform); a disk platform is another kernel, and a
// disk's kernel+initrd image is a node of its own.
func TestKernelNodesPerNeeds(t *testing.T) {
	a, b, py := minimalApp("a", "go"), minimalApp("b", "go"), minimalApp("py", "python")
	deb := &lang.App{Name: "deb", Language: "go", Base: "linux"}
	p := &lang.Project{
		Dir:  "/p",
		Apps: []*lang.App{a, b, py, deb},
		Targets: []*lang.Target{
			{Name: "dev", Provider: "qemu", Apps: []string{"a", "b", "py", "deb"}},
			{Name: "disk", Provider: "qemu", Apps: []string{"a"}, Format: "qcow2", Boot: "bios"},
		},
	}
	g := UpGraph(p, p.Targets, &Env{Environ: []string{}})
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	var kernels []string
	for _, n := range g.Nodes() {
		deps[n.ID] = n.Deps
		if strings.HasPrefix(n.ID, linux.KernelIDPrefix) {
			kernels = append(kernels, n.ID)
		}
	}
	slices.Sort(kernels)
	want := []string{
		"build kernel (pci virtio-pci)",
		"build kernel (pvh root-disk virtio-mmio)",
	}
	if !slices.Equal(kernels, want) {
		t.Fatalf("kernel nodes %v, want %v", kernels, want)
	}
	for app, kernel := range map[*lang.App]string{a: want[1], b: want[1], py: want[1]} {
		if d := deps[packageID(app)]; !slices.Contains(d, kernel) {
			t.Errorf("%s depends on %v, want %s", packageID(app), d, kernel)
		}
	}
	if d := deps[packageID(deb)]; slices.ContainsFunc(d, func(s string) bool { return strings.HasPrefix(s, linux.KernelIDPrefix) }) {
		t.Errorf("an app without kernel = \"minimal\" depends on a kernel node: %v", d)
	}
	diskPkg := "package a (linux, kernel+initrd, kernel pci virtio-pci)"
	if d := deps[diskPkg]; !slices.Contains(d, want[0]) {
		t.Errorf("%s depends on %v, want %s (nodes: %v)", diskPkg, d, want[0], deps)
	}
	if d := deps[diskID(a, "bios")]; !slices.Equal(d, []string{diskPkg}) {
		t.Errorf("the bios disk is made from %v, want %s", d, diskPkg)
	}
}

// UNIKFILE_KERNEL=minimal gives every app that names no kernel file a
// minimal kernel; a kernel file in the Unikfile wins.
func TestMinimalByDefault(t *testing.T) {
	count := func(env *Env, a *lang.App) int {
		p := &lang.Project{Dir: "/p", Apps: []*lang.App{a}}
		n := 0
		for _, node := range BuildGraph(p, p.Apps, env).Nodes() {
			if strings.HasPrefix(node.ID, linux.KernelIDPrefix) {
				n++
			}
		}
		return n
	}
	plain := &lang.App{Name: "a", Language: "go", Base: "linux"}
	file := &lang.App{Name: "a", Language: "go", Base: "linux", BaseSettings: &linux.Settings{Kernel: "/boot/vmlinuz"}}
	env := &Env{Environ: []string{"UNIKFILE_KERNEL=minimal"}}
	if count(env, plain) != 1 {
		t.Error("UNIKFILE_KERNEL=minimal does not give an app a kernel node")
	}
	if count(env, file) != 0 {
		t.Error("a kernel file in the Unikfile lost to UNIKFILE_KERNEL=minimal")
	}
	env = &Env{Environ: []string{"PATH=/bin"}}
	if count(env, plain) != 0 {
		t.Error("no setting gave an app a kernel node")
	}
	env.MinimalByDefault()
	if count(env, plain) != 1 || !slices.Contains(env.Environ, "PATH=/bin") {
		t.Errorf("MinimalByDefault: %v", env.Environ)
	}
}

// Two Unikfiles' apps with the same needs share one kernel node, which is
// not namespaced; `kernel build` gets it from PreparedGraph.
func TestWorkspaceSharesKernels(t *testing.T) {
	w, root, api, web := threeProjects()
	api.Apps[0].BaseSettings = &linux.Settings{Kernel: linux.KernelMinimal}
	web.Apps[0].BaseSettings = &linux.Settings{Kernel: linux.KernelMinimal}
	pl := WorkspaceUpGraph(w, []lang.ProjectTarget{{Project: root, Target: root.Targets[0]}}, &Env{Environ: []string{}})
	if err := pl.Graph.Validate(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range pl.Graph.Nodes() {
		if strings.HasPrefix(node.ID, linux.KernelIDPrefix) {
			n++
			if node.ID != "build kernel (pvh root-disk virtio-mmio)" {
				t.Errorf("kernel node %q", node.ID)
			}
		}
		if strings.HasPrefix(node.ID, "package ") && !slices.Contains(node.Deps, "build kernel (pvh root-disk virtio-mmio)") {
			t.Errorf("%s does not depend on the shared kernel: %v", node.ID, node.Deps)
		}
	}
	if n != 1 {
		t.Errorf("%d kernel nodes, want 1", n)
	}
	var ids []string
	for _, node := range PreparedGraph(pl).Nodes() {
		ids = append(ids, node.ID)
	}
	if !slices.Equal(ids, []string{"build kernel (pvh root-disk virtio-mmio)"}) {
		t.Errorf("PreparedGraph: %v", ids)
	}
}

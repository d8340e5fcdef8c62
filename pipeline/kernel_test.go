package pipeline

import (
	"slices"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

func minimal(name, language string) *lang.App {
	return &lang.App{Name: name, Language: language, Base: "linux", Linux: lang.LinuxSettings{Kernel: lang.KernelMinimal}}
}

// Apps with the same needs share one kernel node; another language or a
// disk platform is another kernel, and a disk's kernel+initrd image is
// its own node.
func TestKernelNodesPerNeeds(t *testing.T) {
	p := &lang.Project{
		Dir:  "/p",
		Apps: []*lang.App{minimal("a", "go"), minimal("b", "go"), minimal("py", "python"), {Name: "deb", Language: "go", Base: "linux"}},
		Targets: []*lang.Target{
			{Name: "dev", Provider: "qemu", Apps: []string{"a", "b", "py", "deb"}},
			{Name: "disk", Provider: "qemu", Apps: []string{"a"}, Format: "qcow2", Boot: "bios"},
		},
	}
	g := UpGraph(p, p.Targets, &Env{})
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	var kernels []string
	for _, n := range g.Nodes() {
		deps[n.ID] = n.Deps
		if strings.HasPrefix(n.ID, kernelIDPrefix) {
			kernels = append(kernels, n.ID)
		}
	}
	slices.Sort(kernels)
	want := []string{
		"build kernel (ipv6 libc pvh root-disk virtio-mmio)",
		"build kernel (pci virtio-pci)",
		"build kernel (pvh virtio-mmio)",
	}
	if !slices.Equal(kernels, want) {
		t.Fatalf("kernel nodes %v, want %v", kernels, want)
	}
	for app, kernel := range map[string]string{"a": want[2], "b": want[2], "py": want[0]} {
		if d := deps[packageID(app)]; !slices.Contains(d, kernel) {
			t.Errorf("%s depends on %v, want %s", packageID(app), d, kernel)
		}
	}
	if d := deps[packageID("deb")]; slices.ContainsFunc(d, func(s string) bool { return strings.HasPrefix(s, kernelIDPrefix) }) {
		t.Errorf("an app without kernel = \"minimal\" depends on a kernel node: %v", d)
	}
	diskPkg := "package a (linux, kernel+initrd, kernel pci virtio-pci)"
	if d := deps[diskPkg]; !slices.Contains(d, want[1]) {
		t.Errorf("%s depends on %v, want %s (nodes: %v)", diskPkg, d, want[1], deps)
	}
	if d := deps[diskID("a", "bios")]; !slices.Equal(d, []string{diskPkg}) {
		t.Errorf("the bios disk is made from %v, want %s", d, diskPkg)
	}
}

// UNIKFILE_KERNEL=minimal gives every app that names no kernel file a
// built kernel; a kernel file in the Unikfile wins.
func TestMinimalByDefault(t *testing.T) {
	env := &Env{Environ: []string{"UNIKFILE_KERNEL=minimal"}}
	if !env.minimalKernel(&lang.App{}) {
		t.Error("UNIKFILE_KERNEL=minimal does not select the minimal kernel")
	}
	if env.minimalKernel(&lang.App{Linux: lang.LinuxSettings{Kernel: "/boot/vmlinuz"}}) {
		t.Error("a kernel file in the Unikfile lost to UNIKFILE_KERNEL=minimal")
	}
	env = &Env{Environ: []string{"PATH=/bin"}}
	if env.minimalKernel(&lang.App{}) {
		t.Error("no setting selected the minimal kernel")
	}
	env.MinimalByDefault()
	if !env.minimalKernel(&lang.App{}) || !slices.Contains(env.Environ, "PATH=/bin") {
		t.Errorf("MinimalByDefault: %v", env.Environ)
	}
}

// Two Unikfiles' apps with the same needs share one kernel node, which is
// not namespaced.
func TestWorkspaceSharesKernels(t *testing.T) {
	w, root, api, web := threeProjects()
	api.Apps[0].Linux.Kernel = lang.KernelMinimal
	web.Apps[0].Linux.Kernel = lang.KernelMinimal
	pl := WorkspaceUpGraph(w, []lang.ProjectTarget{{Project: root, Target: root.Targets[0]}}, &Env{})
	if err := pl.Graph.Validate(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range pl.Graph.Nodes() {
		if strings.HasPrefix(node.ID, kernelIDPrefix) {
			n++
			if node.ID != "build kernel (pvh virtio-mmio)" {
				t.Errorf("kernel node %q", node.ID)
			}
		}
		if strings.HasPrefix(node.ID, "package ") && !slices.Contains(node.Deps, "build kernel (pvh virtio-mmio)") {
			t.Errorf("%s does not depend on the shared kernel: %v", node.ID, node.Deps)
		}
	}
	if n != 1 {
		t.Errorf("%d kernel nodes, want 1", n)
	}
}

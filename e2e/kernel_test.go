package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// kernel fetch downloads Debian's cloud kernel into an empty cache, a
// second fetch keeps it, and a build with no UNIKFILE_KERNEL finds it.
func TestKernelFetchFillsTheCache(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("kernel fetch needs apt-get (Debian)")
	}
	p := newProject(t, map[string]string{
		"Unikfile": "app \"a\" {\n  language = \"go\"\n}\n",
		"go.mod":   goMod,
		"main.go":  exitSource,
	})
	p.cacheDir = t.TempDir()
	p.env = []string{"UNIKFILE_KERNEL="}
	r := p.ok("kernel", "fetch")
	path := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(path, p.cacheDir+"/kernels/") || !strings.Contains(path, "/boot/vmlinuz-") {
		t.Fatalf("kernel fetch printed %q, want a vmlinuz in %s", path, p.cacheDir)
	}
	if r := p.ok("kernel", "fetch"); !strings.Contains(r.stderr, "already in") {
		t.Errorf("a second fetch downloaded again:\n%s", r.stderr)
	}
	var all, ks []struct {
		Kind, Path, Version, ModulesDir string
	}
	if err := json.Unmarshal([]byte(p.ok("kernel", "ls", "--json").stdout), &all); err != nil {
		t.Fatalf("kernel ls --json: %v", err)
	}
	for _, k := range all {
		if k.Kind == "fetched" {
			ks = append(ks, k)
		}
	}
	if len(ks) != 1 || ks[0].Path != path || ks[0].ModulesDir == "" {
		t.Fatalf("kernel ls --json: %+v", all)
	}
	var imgs []struct {
		Kernel string `json:"kernel"`
	}
	if err := json.Unmarshal([]byte(p.ok("build", "--json").stdout), &imgs); err != nil || len(imgs) != 1 || imgs[0].Kernel != ks[0].Version {
		t.Fatalf("build with the fetched kernel: %+v %v", imgs, err)
	}
}

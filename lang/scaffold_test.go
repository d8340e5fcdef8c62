package lang_test

import (
	"bytes"
	. "github.com/unikfile/unikfile/lang"
	"path/filepath"
	"testing"
)

func TestScaffold(t *testing.T) {
	tests := []struct {
		dirName, module, app string
	}{
		{"hello", "example.com/hello", "hello"},
		{"My Service.v2", "github.com/acme/my-service/v2", "my-service-v2"},
		{"2fast", "", "app2fast"},
		{"___", "x", "app"},
	}
	for _, tt := range tests {
		t.Run(tt.dirName, func(t *testing.T) {
			src := Scaffold(tt.dirName, tt.module)
			p, _, diags := Load(project(t, string(src)), Options{Catalog: catalog, Environ: noEnv})
			if len(diags) > 0 {
				t.Fatalf("scaffold does not load cleanly: %s\n%s", diags.Error(), src)
			}
			if len(p.Apps) != 1 || len(p.Targets) != 1 {
				t.Fatalf("want one app and one target:\n%s", src)
			}
			a, tg := p.Apps[0], p.Targets[0]
			if a.Name != tt.app || a.Language != "go" || len(a.Ports) != 1 || a.Ports[0] != 8080 || a.Source != p.Dir {
				t.Errorf("app = %s", dump(a))
			}
			if tg.Name != "dev" || tg.Provider != "qemu" || len(tg.Apps) != 1 || tg.Apps[0] != tt.app {
				t.Errorf("target = %s", dump(tg))
			}
			if formatted, _ := Format(src, filepath.Join(p.Dir, FileName)); !bytes.Equal(formatted, src) {
				t.Errorf("scaffold is not formatted:\n%s", src)
			}
		})
	}
}

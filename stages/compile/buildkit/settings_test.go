package buildkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

func TestSettingsPrecedence(t *testing.T) {
	for _, c := range []struct {
		name         string
		build        lang.Build
		flag         string
		env          []string
		wantExecutor string
		wantHost     string
	}{
		{"defaults", lang.Build{Executor: "local"}, "", nil, "local", DefaultHost},
		{"unikfile", lang.Build{Executor: "auto", ExecutorSet: true, BuildKitHost: "tcp://b:1234"}, "", nil, "auto", "tcp://b:1234"},
		{"env selects buildkit", lang.Build{Executor: "local"}, "", []string{HostEnv + "=unix:///x.sock"}, "buildkit", "unix:///x.sock"},
		{"env keeps an explicit executor", lang.Build{Executor: "local", ExecutorSet: true}, "", []string{HostEnv + "=unix:///x.sock"}, "local", "unix:///x.sock"},
		{"env host wins over the Unikfile's", lang.Build{Executor: "auto", ExecutorSet: true, BuildKitHost: "tcp://b:1"}, "", []string{HostEnv + "=tcp://c:2"}, "auto", "tcp://c:2"},
		{"flag wins", lang.Build{Executor: "buildkit", ExecutorSet: true}, "local", []string{HostEnv + "=unix:///x.sock"}, "local", "unix:///x.sock"},
	} {
		s := SettingsFor(&lang.Project{Dir: "/p", Build: c.build}, c.flag, c.env)
		if s.Executor != c.wantExecutor || s.Host != c.wantHost {
			t.Errorf("%s: executor %q host %q; want %q %q", c.name, s.Executor, s.Host, c.wantExecutor, c.wantHost)
		}
	}
}

func TestExcludesAreTheIgnoredPaths(t *testing.T) {
	app := helloApp(t, helloMain)
	got, err := excludes(app.Source)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "notes" {
		t.Errorf("excludes = %q; want [notes] (from .unikignore)", got)
	}
	if escapePattern("a[1]*b?") != `a\[1\]\*b\?` {
		t.Errorf("escapePattern = %q", escapePattern("a[1]*b?"))
	}
}

func TestCacheOptionsLocalPaths(t *testing.T) {
	dir := t.TempDir()
	e := &Executor{s: Settings{ProjectDir: dir}}
	app := &lang.App{Name: "api"}
	exports, err := e.cacheOptions(app, []lang.CacheSpec{
		{Type: "local", Attrs: map[string]string{"dest": ".buildcache", "mode": "max"}},
		{Type: "registry", Attrs: map[string]string{"ref": "r.example.com/a:cache", "mode": "max"}},
	}, "dest")
	if err != nil {
		t.Fatal(err)
	}
	// Each app has its own entry: BuildKit's last export to a ref replaces it.
	if len(exports) != 2 || exports[0].Attrs["dest"] != filepath.Join(dir, ".buildcache") || exports[0].Attrs["tag"] != "api" || exports[1].Attrs["ref"] != "r.example.com/a:cache-api" {
		t.Errorf("exports = %+v", exports)
	}
	// A local cache that was never written is an empty cache, not an error.
	imports, err := e.cacheOptions(app, []lang.CacheSpec{{Type: "local", Attrs: map[string]string{"src": ".buildcache"}}}, "src")
	if err != nil || len(imports) != 0 {
		t.Errorf("imports of a missing local cache = %+v, %v; want none", imports, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".buildcache"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".buildcache", "index.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	imports, _ = e.cacheOptions(app, []lang.CacheSpec{{Type: "local", Attrs: map[string]string{"src": ".buildcache"}}}, "src")
	if len(imports) != 1 || imports[0].Attrs["src"] != filepath.Join(dir, ".buildcache") {
		t.Errorf("imports = %+v", imports)
	}
}

func TestBadAddress(t *testing.T) {
	for _, host := range []string{"ftp://x", "buildkit.example.com:1234", "unix://"} {
		for _, executor := range []string{"buildkit", "auto"} {
			_, _, err := Select(context.Background(), Settings{Executor: executor, Host: host})
			if err == nil || !strings.Contains(err.Error(), "write unix:///path/to/buildkitd.sock, tcp://host:port") {
				t.Errorf("%s at %q: err = %v; want the address forms", executor, host, err)
			}
		}
	}
}

func TestConnectionHelperHints(t *testing.T) {
	e := &UnreachableError{Host: "docker-container://bk", Err: errors.New("exit status 1")}
	if !strings.Contains(e.Error(), "start a container named bk that runs buildkitd") {
		t.Errorf("docker-container hint: %v", e)
	}
	e = &UnreachableError{Host: "kube-pod://bk", Err: errors.New("exit status 1")}
	if !strings.Contains(e.Error(), "pod bk runs buildkitd") {
		t.Errorf("kube-pod hint: %v", e)
	}
}

func TestAppRef(t *testing.T) {
	for ref, want := range map[string]string{
		"r.example.com/a:cache":          "r.example.com/a:cache-api",
		"r.example.com:5000/a":           "r.example.com:5000/a:latest-api",
		"127.0.0.1:5000/team/cache:main": "127.0.0.1:5000/team/cache:main-api",
		"r.example.com/a@sha256:0123":    "r.example.com/a@sha256:0123",
	} {
		if got := appRef(ref, "api"); got != want {
			t.Errorf("appRef(%q) = %q; want %q", ref, got, want)
		}
	}
}

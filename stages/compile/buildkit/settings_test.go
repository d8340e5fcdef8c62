package buildkit

import (
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

package address

import (
	"fmt"
	"strings"

	"github.com/unikfile/unikfile/lang"
)

// Apps resolves addrs to the apps to build: a name is an app of the
// project, or a target whose apps (its own and imported ones) are built.
// No addresses means every app of the main project (in mainDir). A
// recursive address skips projects that lack the name and fails only if
// none has it.
func Apps(w *lang.Workspace, base, mainDir string, addrs []Address) ([]lang.ProjectApp, error) {
	var out []lang.ProjectApp
	seen := map[*lang.App]bool{}
	add := func(pa lang.ProjectApp) {
		if !seen[pa.App] {
			seen[pa.App] = true
			out = append(out, pa)
		}
	}
	if len(addrs) == 0 {
		addrs = []Address{{Raw: ".", Dir: ".", Plain: true}}
	}
	for _, a := range addrs {
		found := false
		for _, p := range w.Projects {
			if !a.matches(base, mainDir, p) {
				continue
			}
			switch {
			case a.Name == "":
				for _, app := range p.Apps {
					add(lang.ProjectApp{Project: p, App: app})
				}
				found = found || len(p.Apps) > 0 || !a.Recursive
			case p.App(a.Name) != nil:
				add(lang.ProjectApp{Project: p, App: p.App(a.Name)})
				found = true
			case p.Target(a.Name) != nil:
				for _, pa := range w.TargetApps(p, p.Target(a.Name)) {
					add(pa)
				}
				found = true
			case !a.Recursive:
				return nil, fmt.Errorf("no app or target named %q in %s; apps: %s; targets: %s", a.Name, p.File, list(appNames(p)), list(targetNames(p)))
			}
		}
		if !found {
			return nil, fmt.Errorf("address %q matches no app in the %d Unikfile(s) loaded", a.Raw, len(w.Projects))
		}
	}
	return out, nil
}

// Targets resolves addrs to the targets to bring up. No addresses means
// every target of the main project. A recursive address skips projects
// without the target (or without any target) and fails only if none has
// one.
func Targets(w *lang.Workspace, base, mainDir string, addrs []Address) ([]lang.ProjectTarget, error) {
	var out []lang.ProjectTarget
	seen := map[*lang.Target]bool{}
	add := func(p *lang.Project, t *lang.Target) {
		if !seen[t] {
			seen[t] = true
			out = append(out, lang.ProjectTarget{Project: p, Target: t})
		}
	}
	if len(addrs) == 0 {
		addrs = []Address{{Raw: ".", Dir: ".", Plain: true}}
	}
	for _, a := range addrs {
		found := false
		for _, p := range w.Projects {
			if !a.matches(base, mainDir, p) {
				continue
			}
			switch {
			case a.Name == "" && len(p.Targets) > 0:
				for _, t := range p.Targets {
					add(p, t)
				}
				found = true
			case a.Name == "" && !a.Recursive:
				return nil, fmt.Errorf("%s declares no target; add one, e.g. target \"dev\" { provider = \"qemu\" apps = [app.NAME] }", p.File)
			case a.Name == "":
			case p.Target(a.Name) != nil:
				add(p, p.Target(a.Name))
				found = true
			case !a.Recursive:
				return nil, fmt.Errorf("no target named %q in %s; targets: %s", a.Name, p.File, list(targetNames(p)))
			}
		}
		if !found {
			return nil, fmt.Errorf("address %q matches no target in the %d Unikfile(s) loaded", a.Raw, len(w.Projects))
		}
	}
	return out, nil
}

func appNames(p *lang.Project) []string {
	var n []string
	for _, a := range p.Apps {
		n = append(n, a.Name)
	}
	return n
}

func targetNames(p *lang.Project) []string {
	var n []string
	for _, t := range p.Targets {
		n = append(n, t.Name)
	}
	return n
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

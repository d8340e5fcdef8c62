package lang_test

import (
	"encoding/json"
	. "github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy/qemu"
	"github.com/unikfile/unikfile/stages/package/linux"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// project writes a Unikfile with src into a new temp dir, creates the
// given subdirectories, and returns the Unikfile's path.
func project(t *testing.T, src string, dirs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// noEnv is an empty environment, so the host's UNIKFILE_VAR_* never leak
// into a test.
var noEnv = []string{}

const fullUnikfile = `
variable "region" {
  default = "eu-west-1"
}

variable "replicas" {
  type    = number
  default = 2
}

variable "extra_ports" {
  type        = list(number)
  default     = [9090]
  description = "ports beyond the main one"
}

locals {
  prefix    = upper(var.region)
  log_level = lookup(local.levels, "prod", "info")
}

locals {
  levels    = { prod = "warn", dev = "debug" }
  all_ports = concat([8080], var.extra_ports)
  web       = app.web
}

app "api" {
  source   = "./api"
  language = "go"
  base     = "linux"
  main     = "./cmd/api"
  args     = ["-listen", format(":%d", 8080), join(",", ["a", "b"])]
  env = {
    LOG_LEVEL = local.log_level
    REGION    = local.prefix
    REPLICAS  = var.replicas
    PEER      = local.web.name
  }
  ports  = local.all_ports
  memory = "1GiB"

  linux {
    kernel  = "kernels/vmlinuz"
    cmdline = "console=ttyS0 quiet"
  }
}

app "web" {
  language = "node"
  memory   = "512M"
}

target "dev" {
  provider = "qemu"
  apps     = [app.api, local.web]

  qemu {
    accel      = "tcg"
    cpus       = max(1, var.replicas)
    bind       = "0.0.0.0"
    host_ports = { 8080 = 18080, "9090" = 19090 }
  }
}

target "prod" {
  provider = "qemu"
  apps     = [for a in ["api"] : app[a]]
  format   = "vhd"
  boot     = "bios"
}

build {
  executor      = "buildkit"
  buildkit_host = "tcp://buildkit.example.com:1234"
  cache_from    = ["type=registry,ref=registry.example.com/api:cache", "type=local,src=.cache/bk"]
  cache_to      = ["type=registry,\"ref=registry.example.com/api:cache\",mode=max,registry.insecure=true"]
}
`

func TestLoadFull(t *testing.T) {
	path := project(t, fullUnikfile, "api", "kernels")
	dir := filepath.Dir(path)
	if err := os.WriteFile(filepath.Join(dir, "kernels", "vmlinuz"), []byte("a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := Load(path, Options{Catalog: catalog, Environ: noEnv})
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diags.Error())
	}
	if p.File != path || p.Dir != dir {
		t.Errorf("File, Dir = %q, %q; want %q, %q", p.File, p.Dir, path, dir)
	}

	// Ranges point at the block headers; check them, then leave them out
	// of the comparison.
	for i, line := range []int{28, 49} {
		if r := p.Apps[i].Range; r.Start.Line != line || r.Filename != path {
			t.Errorf("app %d Range = %s; want line %d of %s", i, r, line, path)
		}
		p.Apps[i].Range = hcl.Range{}
	}
	for i, line := range []int{54, 66} {
		if r := p.Targets[i].Range; r.Start.Line != line {
			t.Errorf("target %d Range = %s; want line %d", i, r, line)
		}
		p.Targets[i].Range = hcl.Range{}
	}

	wantApps := []*App{
		{
			Name:     "api",
			Source:   filepath.Join(dir, "api"),
			Language: "go",
			Base:     "linux",
			Main:     "./cmd/api",
			Args:     []string{"-listen", ":8080", "a,b"},
			Env: map[string]string{
				"LOG_LEVEL": "warn",
				"REGION":    "EU-WEST-1",
				"REPLICAS":  "2",
				"PEER":      "web",
			},
			Ports:     []int{8080, 9090},
			MemoryMiB: 1024,
			MemorySet: true,
			BaseSettings: &linux.Settings{
				Kernel:  filepath.Join(dir, "kernels", "vmlinuz"),
				Cmdline: "console=ttyS0 quiet",
			},
		},
		{
			Name:         "web",
			Source:       dir,
			Language:     "node",
			Base:         "linux",
			Args:         []string{},
			Env:          map[string]string{},
			Ports:        []int{},
			MemoryMiB:    512,
			MemorySet:    true,
			BaseSettings: &linux.Settings{},
		},
	}
	if !reflect.DeepEqual(p.Apps, wantApps) {
		t.Errorf("Apps:\n got %s\nwant %s", dump(p.Apps), dump(wantApps))
	}

	wantTargets := []*Target{
		{
			Name:     "dev",
			Provider: "qemu",
			Apps:     []string{"api", "web"},
			Format:   "kernel+initrd",
			Boot:     "bios",
			Settings: &qemu.Settings{
				Accel:     "tcg",
				CPUs:      2,
				Bind:      "0.0.0.0",
				HostPorts: map[int]int{8080: 18080, 9090: 19090},
			},
		},
		{
			Name:     "prod",
			Provider: "qemu",
			Apps:     []string{"api"},
			Format:   "vhd",
			Boot:     "bios",
			Settings: qemu.DefaultSettings(),
		},
	}
	if !reflect.DeepEqual(p.Targets, wantTargets) {
		t.Errorf("Targets:\n got %s\nwant %s", dump(p.Targets), dump(wantTargets))
	}
	wantBuild := Build{
		Executor: "buildkit", ExecutorSet: true, BuildKitHost: "tcp://buildkit.example.com:1234",
		CacheFrom: []CacheSpec{
			{Type: "registry", Attrs: map[string]string{"ref": "registry.example.com/api:cache"}},
			{Type: "local", Attrs: map[string]string{"src": ".cache/bk"}},
		},
		CacheTo: []CacheSpec{{Type: "registry", Attrs: map[string]string{"ref": "registry.example.com/api:cache", "mode": "max", "registry.insecure": "true"}}},
	}
	if !reflect.DeepEqual(p.Build, wantBuild) {
		t.Errorf("Build:\n got %s\nwant %s", dump(p.Build), dump(wantBuild))
	}
	if p.App("web") != p.Apps[1] || p.Target("prod") != p.Targets[1] || p.App("nope") != nil {
		t.Errorf("Project.App/Target lookups are wrong")
	}
}

func TestLoadDefaults(t *testing.T) {
	path := project(t, `
app "hello" {
  language = "go"
}

target "dev" {
  provider = "qemu"
  apps     = [app.hello]
}
`)
	p, _, diags := Load(path, Options{Catalog: catalog, Environ: noEnv})
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diags.Error())
	}
	a := p.Apps[0]
	if a.Source != p.Dir || a.Base != "linux" || a.Main != "" || a.MemoryMiB != 256 || len(a.Ports) != 0 {
		t.Errorf("app defaults: %s", dump(a))
	}
	q := qemu.SettingsOf(p.Targets[0])
	if q.Accel != "auto" || q.CPUs != 0 || q.Bind != "127.0.0.1" || len(q.HostPorts) != 0 {
		t.Errorf("qemu defaults: %s", dump(q))
	}
	if p.Build.Executor != "local" {
		t.Errorf("Build.Executor = %q; want local", p.Build.Executor)
	}
}

const varsUnikfile = `
variable "greeting" {
  default = "hi"
}
variable "cpus" {
  type    = number
  default = 1
}
variable "ports" {
  type    = list(number)
  default = [8080]
}
variable "labels" {
  type    = map(string)
  default = {}
}
variable "debug" {
  type    = bool
  default = false
}
variable "tags" {
  default = ["a"]
}

app "a" {
  language = "go"
  ports    = var.ports
  args     = var.tags
  env      = merge({ GREETING = var.greeting, DEBUG = tostring(var.debug) }, var.labels)
}

target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    cpus = var.cpus
  }
}
`

func TestVariables(t *testing.T) {
	tests := []struct {
		name     string
		vars     map[string]string
		environ  []string
		greeting string
		cpus     int
		ports    []int
		env      map[string]string
		args     []string
	}{
		{
			name:     "defaults",
			greeting: "hi", cpus: 1, ports: []int{8080}, args: []string{"a"},
			env: map[string]string{"GREETING": "hi", "DEBUG": "false"},
		},
		{
			name:     "environment over default",
			environ:  []string{"UNIKFILE_VAR_greeting=hello", "UNIKFILE_VAR_cpus=4", "OTHER=x", "UNIKFILE_VAR_debug=true"},
			greeting: "hello", cpus: 4, ports: []int{8080}, args: []string{"a"},
			env: map[string]string{"GREETING": "hello", "DEBUG": "true"},
		},
		{
			name:     "--var over environment",
			vars:     map[string]string{"greeting": "hey", "cpus": "8"},
			environ:  []string{"UNIKFILE_VAR_greeting=hello", "UNIKFILE_VAR_cpus=4"},
			greeting: "hey", cpus: 8, ports: []int{8080}, args: []string{"a"},
			env: map[string]string{"GREETING": "hey", "DEBUG": "false"},
		},
		{
			name:     "lists and maps parse as HCL",
			vars:     map[string]string{"ports": "[80, 443]", "labels": `{ ZONE = "b" }`, "tags": `["x", "y"]`},
			environ:  []string{"UNIKFILE_VAR_greeting="},
			greeting: "", cpus: 1, ports: []int{80, 443}, args: []string{"x", "y"},
			env: map[string]string{"GREETING": "", "DEBUG": "false", "ZONE": "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := tt.environ
			if environ == nil {
				environ = noEnv
			}
			p, _, diags := Load(project(t, varsUnikfile), Options{Catalog: catalog, Vars: tt.vars, Environ: environ})
			if diags.HasErrors() {
				t.Fatalf("Load: %s", diags.Error())
			}
			a, q := p.Apps[0], qemu.SettingsOf(p.Targets[0])
			if a.Env["GREETING"] != tt.greeting || q.CPUs != tt.cpus {
				t.Errorf("greeting, cpus = %q, %d; want %q, %d", a.Env["GREETING"], q.CPUs, tt.greeting, tt.cpus)
			}
			if !reflect.DeepEqual(a.Ports, tt.ports) || !reflect.DeepEqual(a.Env, tt.env) || !reflect.DeepEqual(a.Args, tt.args) {
				t.Errorf("ports, env, args = %v, %v, %v; want %v, %v, %v", a.Ports, a.Env, a.Args, tt.ports, tt.env, tt.args)
			}
		})
	}
}

func TestVariableConversionErrors(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		environ []string
		want    []string // fragments of the one error's summary and detail
		line    int      // of the subject; 0 for none
	}{
		{"number", map[string]string{"cpus": "four"}, nil,
			[]string{`Invalid value for variable "cpus"`, "--var cpus=four", "a number is required"}, 5},
		{"number from environment", nil, []string{"UNIKFILE_VAR_cpus=1.x"},
			[]string{`Invalid value for variable "cpus"`, "UNIKFILE_VAR_cpus=1.x", "number"}, 5},
		{"bool", map[string]string{"debug": "yes"}, nil,
			[]string{`Invalid value for variable "debug"`, "bool"}, 17},
		{"list syntax", map[string]string{"ports": "[80,"}, nil,
			[]string{`Invalid value for variable "ports"`, "does not parse"}, 9},
		{"list element type", map[string]string{"ports": `["x"]`}, nil,
			[]string{`Invalid value for variable "ports"`, "list(number)", "a number is required"}, 9},
		{"references", map[string]string{"ports": `[var.cpus]`}, nil,
			[]string{"Variables not allowed"}, 1},
		{"undeclared", map[string]string{"gretting": "x"}, nil,
			[]string{`Undeclared variable "gretting" given with --var`, "declared variables: greeting, cpus, ports, labels, debug, tags"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := tt.environ
			if environ == nil {
				environ = noEnv
			}
			p, _, diags := Load(project(t, varsUnikfile), Options{Catalog: catalog, Vars: tt.vars, Environ: environ})
			if p != nil || len(diags) != 1 {
				t.Fatalf("want exactly one error and no project; got %d: %s", len(diags), diags.Error())
			}
			d := diags[0]
			for _, w := range tt.want {
				if !strings.Contains(d.Summary+": "+d.Detail, w) {
					t.Errorf("error %q lacks %q", d.Summary+": "+d.Detail, w)
				}
			}
			switch {
			case tt.line == 0 && d.Subject != nil:
				t.Errorf("subject = %s; want none", d.Subject)
			case tt.line != 0 && (d.Subject == nil || d.Subject.Start.Line != tt.line):
				t.Errorf("subject = %v; want line %d", d.Subject, tt.line)
			}
		})
	}
}

func TestFindFile(t *testing.T) {
	dir := t.TempDir()
	_, err := FindFile(dir)
	if err == nil || !strings.Contains(err.Error(), "no Unikfile in "+dir) || !strings.Contains(err.Error(), "unikfile init") {
		t.Errorf("FindFile(empty dir) = %v", err)
	}
	path := project(t, "")
	if got, err := FindFile(filepath.Dir(path)); err != nil || got != path {
		t.Errorf("FindFile = %q, %v; want %q", got, err, path)
	}
}

// dump renders v for failure messages.
func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

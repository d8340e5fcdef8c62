package lang_test

import (
	"bytes"
	"fmt"
	. "github.com/unikfile/unikfile/lang"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadErrors checks that each malformed Unikfile yields an error whose
// text holds a fragment and whose subject starts at line:col (0:0 means
// the error has no source position).
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string // {{outside}} is replaced by a directory outside the project
		// setup runs after the Unikfile is written, in its directory.
		setup     func(t *testing.T, dir, outside string)
		vars      map[string]string
		want      string
		line, col int
	}{
		{name: "syntax error: unclosed brace", src: `
app "a" {
  language = "go"
`, want: "Unclosed configuration block", line: 2, col: 9},
		{name: "unknown attribute", src: `
app "a" {
  language = "go"
  porst    = [8080]
}`, want: `An argument named "porst" is not expected here. Did you mean "ports"?`, line: 4, col: 3},
		{name: "unknown block", src: `
app "a" {
  language = "go"
  linx {
  }
}`, want: `Blocks of type "linx" are not expected here. Did you mean "linux"?`, line: 4, col: 3},
		{name: "unknown top-level block", src: `
service "a" {
}`, want: `Blocks of type "service" are not expected here`, line: 2, col: 1},
		{name: "unknown format", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  format   = "qcow"
}`, want: `Unsupported format "qcow"`, line: 6, col: 14},
		{name: "format the provider cannot boot", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  format   = "gce"
}`, want: `The qemu provider cannot boot format "gce"`, line: 6, col: 14},
		{name: "unknown boot mode", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  format   = "raw"
  boot     = "efi"
}`, want: `boot must be one of: bios, uefi.`, line: 7, col: 14},
		{name: "boot mode without a disk format", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  boot     = "uefi"
}`, want: `boot selects the firmware of a disk image, and format "kernel+initrd" boots the kernel directly`, line: 6, col: 14},
		{name: "unknown attribute in qemu block", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    cpu = 2
  }
}`, want: `Did you mean "cpus"?`, line: 7, col: 5},
		{name: "wrong type", src: `
app "a" {
  language = "go"
  ports    = "x"
}`, want: `Inappropriate value for attribute "ports": list of number required`, line: 4, col: 14},
		{name: "wrong element type", src: `
app "a" {
  language = "go"
  ports    = [8080, "http"]
}`, want: `Inappropriate value for attribute "ports": a number is required`, line: 4, col: 21},
		{name: "bad language", src: `
app "a" {
  language = "cobol"
}`, want: `Unsupported language "cobol"`, line: 3, col: 14},
		{name: "bad base", src: `
app "a" {
  language = "go"
  base     = "linx"
}`, want: `base must be one of: includeos, linux, mirage, osv, rump (the bases this version of unikfile builds). Did you mean "linux"?`, line: 4, col: 14},
		{name: "memory too small", src: `
app "a" {
  language = "go"
  memory   = "32MiB"
}`, want: "at least 64MiB", line: 4, col: 14},
		{name: "memory without unit", src: `
app "a" {
  language = "go"
  memory   = 512
}`, want: `"512" has no unit`, line: 4, col: 14},
		{name: "memory unknown unit", src: `
app "a" {
  language = "go"
  memory   = "1TB"
}`, want: `unknown unit "TB"`, line: 4, col: 14},
		{name: "port out of range", src: `
app "a" {
  language = "go"
  ports    = [8080, 70000]
}`, want: "70000 is not a port", line: 4, col: 21},
		{name: "port zero", src: `
app "a" {
  language = "go"
  ports    = [0]
}`, want: "0 is not a port", line: 4, col: 15},
		{name: "duplicate port", src: `
app "a" {
  language = "go"
  ports    = [8080, 9090, 8080]
}`, want: "Port 8080 is already listed at", line: 4, col: 27},
		{name: "bad env name", src: `
app "a" {
  language = "go"
  env      = { "LOG-LEVEL" = "x" }
}`, want: `"LOG-LEVEL" cannot name an environment variable`, line: 4, col: 16},
		{name: "dangling app reference", src: `
app "hello" { language = "go" }
app "api" { language = "go" }
target "dev" {
  provider = "qemu"
  apps     = [app.hello, app.nope]
}`, want: `no app named "nope"; declared apps: hello, api`, line: 6, col: 26},
		{name: "app named by an unknown string", src: `
app "hello" { language = "go" }
target "dev" {
  provider = "qemu"
  apps     = ["helo"]
}`, want: `no app named "helo"; declared apps: hello. Did you mean "hello"?`, line: 5, col: 15},
		{name: "duplicate app in target", src: `
app "hello" { language = "go" }
target "dev" {
  provider = "qemu"
  apps     = [app.hello, app.hello]
}`, want: `App "hello" is already listed`, line: 5, col: 26},
		{name: "empty apps", src: `
app "hello" { language = "go" }
target "dev" {
  provider = "qemu"
  apps     = []
}`, want: "A target runs at least one app", line: 5, col: 14},
		{name: "dangling var reference", src: `
variable "lang" {
  default = "go"
}
app "a" {
  language = var.langauge
}`, want: `There is no variable named "langauge"; declared variables: lang`, line: 6, col: 14},
		{name: "dangling local reference", src: `
locals {
  lang = "go"
}
app "a" {
  language = local.lnag
}`, want: `There is no local value named "lnag"; declared local values: lang. Did you mean "lang"?`, line: 6, col: 14},
		{name: "unknown reference root", src: `
app "a" {
  language = self.lang
}`, want: `references start with var., local. or app.`, line: 3, col: 14},
		{name: "unknown function", src: `
app "a" {
  language = env("LANG")
}`, want: `There is no function named "env"`, line: 3, col: 14},
		{name: "locals cycle", src: `
locals {
  a = local.b
  b = local.c
}
locals {
  c = upper(local.a)
}`, want: "local.a -> local.b -> local.c -> local.a", line: 3, col: 3},
		{name: "local refers to itself", src: `
locals {
  a = [local.a]
}`, want: "local.a -> local.a", line: 3, col: 3},
		{name: "duplicate local", src: `
locals {
  a = 1
}
locals {
  a = 2
}`, want: "already defined at", line: 6, col: 3},
		{name: "duplicate app name", src: `
app "api" {
  language = "go"
}

app "api" {
  language = "go"
}`, want: `An app named "api" was already declared at ` + "{{file}}" + `:2:1`, line: 6, col: 1},
		{name: "duplicate target name", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
}
target "t" {
  provider = "qemu"
  apps     = [app.a]
}`, want: `A target named "t" was already declared`, line: 7, col: 1},
		{name: "duplicate variable name", src: `
variable "v" { default = 1 }
variable "v" { default = 2 }
`, want: `A variable named "v" was already declared`, line: 3, col: 1},
		{name: "invalid app name", src: `
app "my app" {
  language = "go"
}`, want: `"my app" is not a valid app name`, line: 2, col: 5},
		{name: "missing language", src: `
app "a" {
  base = "linux"
}`, want: `The argument "language" is required`, line: 2, col: 9},
		{name: "missing provider", src: `
app "a" { language = "go" }
target "t" {
  apps = [app.a]
}`, want: `The argument "provider" is required`, line: 3, col: 12},
		{name: "bad provider", src: `
app "a" { language = "go" }
target "t" {
  provider = "azure"
  apps     = [app.a]
}`, want: `(the providers this version of unikfile builds)`, line: 4, col: 14},
		{name: "a provider that is not built", src: `
app "a" { language = "go" }
target "t" {
  provider = "azure"
  apps     = [app.a]
  azure {
    location = "westeurope"
  }
}`, want: `Unsupported provider "azure"`, line: 4, col: 14},
		{name: "a base that is not built, with its block", src: `
app "a" {
  language = "c"
  base     = "unikraft"
  unikraft {
    target = "qemu"
  }
}`, want: `Unsupported base "unikraft"`, line: 4, col: 14},
		{name: "a second qemu block", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {}
  qemu {}
}`, want: `A qemu block was already declared at`, line: 7, col: 3},
		{name: "source escapes with ..", src: `
app "a" {
  source   = "../elsewhere"
  language = "go"
}`, want: "outside the project directory", line: 3, col: 14},
		{name: "source escapes from inside", src: `
app "a" {
  source   = "./api/../../elsewhere"
  language = "go"
}`, want: "outside the project directory", line: 3, col: 14},
		{name: "source absolute outside", src: `
app "a" {
  source   = "{{outside}}"
  language = "go"
}`, want: "outside the project directory", line: 3, col: 14},
		{name: "source symlink to outside", src: `
app "a" {
  source   = "./link/sub"
  language = "go"
}`, setup: func(t *testing.T, dir, outside string) {
			if err := os.Mkdir(filepath.Join(outside, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
		}, want: "resolves through a symlink", line: 3, col: 14},
		{name: "source missing", src: `
app "a" {
  source   = "./nope"
  language = "go"
}`, want: "does not exist", line: 3, col: 14},
		{name: "source is a file", src: `
app "a" {
  source   = "Unikfile"
  language = "go"
}`, want: "is a file", line: 3, col: 14},
		{name: "host_ports key not a port of the target's apps", src: `
app "a" {
  language = "go"
  ports    = [8080]
}
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    host_ports = { 8080 = 18080, 9090 = 19090 }
  }
}`, want: `no app of target "t" listens on port 9090; they expose 8080 (a)`, line: 10, col: 34},
		{name: "host port out of range", src: `
app "a" {
  language = "go"
  ports    = [8080]
}
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    host_ports = { 8080 = 100000 }
  }
}`, want: "100000 is not a port", line: 10, col: 27},
		{name: "bad accel", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    accel = "hvf"
  }
}`, want: "accel must be one of: auto, kvm, tcg", line: 7, col: 13},
		{name: "too many cpus", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    cpus = 65
  }
}`, want: "use a whole number from 1 to 64", line: 7, col: 12},
		{name: "bad bind", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    bind = "localhost"
  }
}`, want: `"localhost" is not an IPv4 address`, line: 7, col: 12},
		{name: "bind IPv6", src: `
app "a" { language = "go" }
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    bind = "::1"
  }
}`, want: `"::1" is not an IPv4 address`, line: 7, col: 12},
		{name: "two apps on one host port", src: `
app "a" {
  language = "go"
  ports    = [8080]
}
app "b" {
  language = "go"
  ports    = [8080]
}
target "t" {
  provider = "qemu"
  apps     = [app.a, app.b]
}`, want: `Apps "a" and "b" of target "t" would both be served on host port 8080`, line: 10, col: 1},
		{name: "bad executor", src: `
build {
  executor = "docker"
}`, want: "executor must be one of: local, buildkit, auto", line: 3, col: 14},
		{name: "cache spec without type", src: `
build {
  cache_from = ["ref=registry.example.com/a:cache"]
}`, want: "has no type: start it with type=registry or type=local", line: 3, col: 17},
		{name: "cache spec of an unknown type", src: `
build {
  cache_to = ["type=redis,ref=x"]
}`, want: `cache type "redis" is not one of: registry, local`, line: 3, col: 15},
		{name: "cache spec not key=value", src: `
build {
  cache_to = ["type=registry,mode"]
}`, want: `"mode" is not key=value`, line: 3, col: 15},
		{name: "registry cache without ref", src: `
build {
  cache_to = ["type=registry,mode=max"]
}`, want: "A registry cache in cache_to needs ref=...", line: 3, col: 15},
		{name: "local cache import without src", src: `
build {
  cache_from = ["type=local,dest=x"]
}`, want: "A local cache in cache_from needs src=...", line: 3, col: 17},
		{name: "cache_from not a list", src: `
build {
  cache_from = "type=local,src=x"
}`, want: "list of string required", line: 3, col: 16},
		{name: "variable without value", src: `
variable "region" {
  type = string
}`, want: `Variable "region" has no default`, line: 2, col: 1},
		{name: "variable default of the wrong type", src: `
variable "n" {
  type    = number
  default = "many"
}`, want: `does not match its type number`, line: 4, col: 13},
		// Hostile input: limits, strict types, paths and names.
		{name: "nesting deeper than the limit", src: "x = " + strings.Repeat("[", 100000),
			want: "Nesting too deep", line: 1, col: 69},
		{name: "a FIFO for a Unikfile", src: ``, setup: func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, FileName)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "not a regular file (a FIFO)", line: 0, col: 0},
		{name: "a device for a Unikfile", src: ``, setup: func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, FileName)
			os.Remove(p)
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}, want: "not a regular file (a character device)", line: 0, col: 0},
		{name: "a Unikfile over the size limit", src: ``, setup: func(t *testing.T, dir, _ string) {
			if err := os.WriteFile(filepath.Join(dir, FileName), bytes.Repeat([]byte("# padding\n"), MaxFileSize/10+1), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: "more than a Unikfile may hold (4 MiB)", line: 0, col: 0},
		{name: "a function call building gigabytes", src: `
locals {
  main = join("", [for i in range(1024) : join("", [for j in range(1024) : format("%1000000s", "")])])
}`, want: "produces more than 64 MiB of values", line: 3, col: 76},
		{name: "a range too large to build", src: `
locals {
  n = length(range(100000000))
}`, want: "range of 100000000 elements is larger than", line: 3, col: 14},
		{name: "a setproduct too large to build", src: `
locals {
  l = range(1000)
  p = setproduct(local.l, local.l, local.l)
}`, want: "setproduct of more than 10000 elements", line: 4, col: 7},
		{name: "a string doubled past the limit", src: `
locals {
  a = format("%100000s", "")
  b = "${local.a}${local.a}${local.a}${local.a}${local.a}${local.a}${local.a}${local.a}${local.a}${local.a}${local.a}"
}`, want: "a string of 1100000 bytes is longer than", line: 4, col: 7},
		{name: "a number for the builder", src: `
app "a" {
  language = "go"
  builder  = 1
}`, want: `attribute "builder": a string is required, and this is a number`, line: 4, col: 14},
		{name: "a number for the source", src: `
app "a" {
  language = "go"
  source   = 1
}`, want: `attribute "source": a string is required, and this is a number`, line: 4, col: 14},
		{name: "a bool for the language", src: `
app "a" {
  language = true
}`, want: `a string is required, and this is a bool`, line: 3, col: 14},
		{name: "empty memory", src: `
app "a" {
  language = "go"
  memory   = ""
}`, want: `"" is not a size`, line: 4, col: 14},
		{name: "a very long app name", src: "app \"" + strings.Repeat("a", 10000) + "\" {\n  language = \"go\"\n}",
			want: "has at most 48 characters", line: 1, col: 5},
		{name: "NUL in args", src: `
app "a" {
  language = "go"
  args     = ["-x", "a\u0000b"]
}`, want: "Element 1 of args holds a NUL character", line: 4, col: 14},
		{name: "NUL in env", src: `
app "a" {
  language = "go"
  env      = { A = "x\u0000y" }
}`, want: "The value of A holds a NUL character", line: 4, col: 20},
		{name: "a line break in the kernel command line", src: `
app "a" {
  language = "go"
  linux {
    cmdline = "quiet\ninit=/bin/sh"
  }
}`, want: "cmdline holds a line break", line: 5, col: 15},
		{name: "a kernel that does not exist", src: `
app "a" {
  language = "go"
  linux {
    kernel = "/nonexistent/vmlinuz"
  }
}`, want: `kernel = "/nonexistent/vmlinuz": stat /nonexistent/vmlinuz: no such file or directory`, line: 5, col: 14},
		{name: "a local cache export outside the project", src: `
build {
  cache_to = ["type=local,dest=../../../tmp/x"]
}`, want: "dest=../../../tmp/x in cache_to leaves the project", line: 3, col: 15},
		{name: "an absolute local cache import", src: `
build {
  cache_from = ["type=local,src=/tmp/x"]
}`, want: "src=/tmp/x in cache_from leaves the project", line: 3, col: 17},
		{name: "one guest port mapped twice after normalisation", src: `
app "a" {
  language = "go"
  ports    = [8080]
}
target "t" {
  provider = "qemu"
  apps     = [app.a]
  qemu {
    host_ports = { 8080 = 9000, "08080" = 9001 }
  }
}`, want: "Port 8080 is already mapped at", line: 10, col: 33},
		{name: "terminal escapes in a value stay in the message only quoted", src: "app \"a\" {\n  language = \"go\u001b]0;owned\u0007\"\n}",
			want: `Unsupported language "go\x1b]0;owned\a"`, line: 2, col: 14},
		{name: "an elf main outside the source", src: `
app "a" {
  language = "elf"
  main     = "../../etc/passwd"
}`, want: `main = "../../etc/passwd" leaves the app's source`, line: 4, col: 14},
		{name: "an absolute main", src: `
app "a" {
  language = "elf"
  main     = "/bin/sh"
}`, want: `main = "/bin/sh" leaves the app's source`, line: 4, col: 14},
		{name: "unknown --var", src: `
variable "region" { default = "x" }
variable "zone" { default = "y" }
`, vars: map[string]string{"regoin": "z"}, want: "declared variables: region, zone", line: 0, col: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outside := t.TempDir()
			path := project(t, strings.ReplaceAll(tt.src, "{{outside}}", outside))
			if tt.setup != nil {
				tt.setup(t, filepath.Dir(path), outside)
			}
			want := strings.ReplaceAll(tt.want, "{{file}}", path)
			p, _, diags := Load(path, Options{Catalog: catalog, Vars: tt.vars, Environ: noEnv})
			if p != nil {
				t.Errorf("Load returned a project despite errors")
			}
			if !diags.HasErrors() {
				t.Fatalf("Load: no errors; want %q", want)
			}
			d := diags[0]
			msg := d.Summary + ": " + d.Detail
			if !strings.Contains(msg, want) {
				t.Errorf("first error %q lacks %q (all: %s)", msg, want, diags.Error())
			}
			var line, col int
			if d.Subject != nil {
				line, col = d.Subject.Start.Line, d.Subject.Start.Column
				if d.Subject.Filename != path {
					t.Errorf("subject file = %q; want %q", d.Subject.Filename, path)
				}
			}
			if line != tt.line || col != tt.col {
				t.Errorf("error at %d:%d; want %d:%d", line, col, tt.line, tt.col)
			}
			if len(diags) > 1 {
				t.Errorf("want one error; got %d: %s", len(diags), diags.Error())
			}
		})
	}
}

func ExampleWriteDiagnostics() {
	dir, _ := os.MkdirTemp("", "unikfile-example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "Unikfile"), []byte(`app "api" {
  language = "go"
  ports    = [8080, 70000]
}
`), 0o644)
	wd, _ := os.Getwd()
	defer func() { _ = os.Chdir(wd) }()
	_ = os.Chdir(dir)

	_, sources, diags := Load("Unikfile", Options{Catalog: catalog, Environ: []string{}})
	if err := WriteDiagnostics(os.Stdout, diags, sources, false); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Error: Invalid port
	//
	//   on Unikfile:3:21, in app "api":
	//    3:   ports    = [8080, 70000]
	//                           ^^^^^
	//
	// 70000 is not a port: ports are whole numbers from 1 to 65535.
}

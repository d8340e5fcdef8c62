package aws_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/stages/deploy/aws"
	"github.com/unikfile/unikfile/stages/registry"
)

func load(t *testing.T, src string) (*lang.Project, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Unikfile")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := lang.Load(path, lang.Options{Catalog: registry.Catalog(), Environ: []string{}})
	if !diags.HasErrors() {
		return p, ""
	}
	return p, diags.Error()
}

const app = `app "api" {
  language = "go"
  ports    = [8080]
}
`

func TestDecodeAWSBlock(t *testing.T) {
	p, errs := load(t, app+`target "prod" {
  provider = "aws"
  apps     = [app.api]
  aws {
    region        = "eu-west-3"
    instance_type = "m6i.large"
    subnet        = "subnet-0123456789abcdef0"
    ingress       = ["0.0.0.0/0", "203.0.113.7/32"]
  }
}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	tg := p.Target("prod")
	want := &aws.Settings{Region: "eu-west-3", InstanceType: "m6i.large", Subnet: "subnet-0123456789abcdef0", Ingress: []string{"0.0.0.0/0", "203.0.113.7/32"}}
	if !reflect.DeepEqual(tg.Settings, want) {
		t.Errorf("settings %+v, want %+v", tg.Settings, want)
	}
	if tg.Format != "raw" || tg.Boot != "bios" {
		t.Errorf("default format and boot: %s, %s", tg.Format, tg.Boot)
	}
	if fw, ok := tg.Settings.Forwards([]int{8080}); ok || fw != nil {
		t.Errorf("apps on AWS are reached at their own address, not forwarded: %v", fw)
	}
}

func TestDecodeDefaults(t *testing.T) {
	p, errs := load(t, app+`target "prod" {
  provider = "aws"
  apps     = [app.api]
}
`)
	if errs != "" {
		t.Fatal(errs)
	}
	s := p.Target("prod").Settings.(*aws.Settings)
	if s.InstanceType != "t3.micro" || s.Region != "" || s.Subnet != "" || len(s.Ingress) != 0 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestDecodeErrors(t *testing.T) {
	for body, want := range map[string]string{
		`region = "Europe"`:                    `"Europe" is not an AWS region name`,
		`instance_type = "big"`:                `"big" is not an EC2 instance type`,
		`subnet = "my-subnet"`:                 `"my-subnet" is not a subnet ID`,
		`ingress = ["10.0.0.1"]`:               `write "10.0.0.1/32"`,
		`ingress = ["10.0.0.1/8"]`:             `"10.0.0.0/8"`,
		`ingress = ["::/0"]`:                   `IPv4 ports only`,
		`ingress = ["everyone"]`:               `not an IPv4 CIDR block`,
		`ingress = ["0.0.0.0/0", "0.0.0.0/0"]`: `listed twice`,
		`zone = "a"`:                           `Unsupported argument`,
	} {
		_, errs := load(t, app+"target \"prod\" {\n  provider = \"aws\"\n  apps = [app.api]\n  aws {\n    "+body+"\n  }\n}\n")
		if !strings.Contains(errs, want) || !strings.Contains(errs, "Unikfile:") {
			t.Errorf("%s: %q, want it to say %q at its line", body, errs, want)
		}
	}
	_, errs := load(t, app+`target "prod" {
  provider = "aws"
  apps     = [app.api]
  format   = "qcow2"
}
`)
	if !strings.Contains(errs, "qcow2") || !strings.Contains(errs, "raw") {
		t.Errorf("a format the aws provider cannot boot: %q", errs)
	}
}

// Every setting replaces the target's instances when it changes: each
// shapes where and how they run, or who reaches them.
func TestEverySettingRedeploys(t *testing.T) {
	a := &lang.App{Name: "api", Ports: []int{8080}}
	digest := func(s *aws.Settings) string {
		return deploy.SettingsDigest(&lang.Target{Name: "prod", Provider: aws.Name, Settings: s}, a, nil)
	}
	base := aws.DefaultSettings()
	d0 := digest(base)
	for name, change := range map[string]func(*aws.Settings){
		"region":        func(s *aws.Settings) { s.Region = "eu-west-1" },
		"instance_type": func(s *aws.Settings) { s.InstanceType = "t3.small" },
		"subnet":        func(s *aws.Settings) { s.Subnet = "subnet-0123456789abcdef0" },
		"ingress":       func(s *aws.Settings) { s.Ingress = []string{"0.0.0.0/0"} },
	} {
		s := aws.DefaultSettings()
		change(s)
		if digest(s) == d0 {
			t.Errorf("changing %s does not replace the instances", name)
		}
	}
}

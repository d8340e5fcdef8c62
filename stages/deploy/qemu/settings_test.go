package qemu

import (
	"reflect"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
)

func TestForwardsDefaultToTheSamePort(t *testing.T) {
	s := &Settings{Bind: "0.0.0.0", HostPorts: map[int]int{8080: 18080}}
	fw, ok := s.Forwards([]int{8080, 9090})
	want := []lang.Forward{{Bind: "0.0.0.0", Host: 18080, Guest: 8080}, {Bind: "0.0.0.0", Host: 9090, Guest: 9090}}
	if !ok || !reflect.DeepEqual(fw, want) {
		t.Errorf("Forwards = %v, %v; want %v", fw, ok, want)
	}
}

// What replaces a running instance is one definition, used by up and by
// watch: the settings that shape every VM and the app's own forwards, not
// another app's host ports.
func TestSettingsDigestReplacesOnWhatShapesTheVM(t *testing.T) {
	api := &lang.App{Name: "api", Ports: []int{8080}, MemoryMiB: 256}
	digest := func(s *Settings, a *lang.App) string {
		tg := &lang.Target{Name: "dev", Provider: Name, Settings: s}
		fw, _ := deploy.Forwards(tg, a, nil)
		return deploy.SettingsDigest(tg, a, fw)
	}
	base := DefaultSettings()
	d0 := digest(base, api)
	for name, change := range map[string]func(s *Settings){
		"accel":             func(s *Settings) { s.Accel = AccelTCG },
		"cpus":              func(s *Settings) { s.CPUs = 2 },
		"bind":              func(s *Settings) { s.Bind = "0.0.0.0" },
		"its own host port": func(s *Settings) { s.HostPorts = map[int]int{8080: 9000} },
	} {
		s := DefaultSettings()
		change(s)
		if digest(s, api) == d0 {
			t.Errorf("changing %s does not replace the instance", name)
		}
	}
	s := DefaultSettings()
	s.HostPorts = map[int]int{9090: 19090} // another app's port
	if digest(s, api) != d0 {
		t.Error("another app's host port replaces this app's instance")
	}
	bigger := *api
	bigger.MemoryMiB = 512
	if digest(base, &bigger) == d0 {
		t.Error("the app's memory does not replace the instance")
	}
}

// A target without cpus boots a linux guest with two CPUs where the host
// has them, and every other base with one; cpus, once set, is what boots.
func TestDefaultCPUs(t *testing.T) {
	for _, c := range []struct {
		base     string
		hostCPUs int
		want     int
	}{
		{"linux", 2, 2}, {"linux", 16, 2}, {"linux", 1, 1},
		{"osv", 8, 1}, {"rump", 8, 1}, {"mirage", 8, 1}, {"includeos", 8, 1},
	} {
		if got := DefaultCPUs(&pack.Image{Base: c.base}, c.hostCPUs); got != c.want {
			t.Errorf("DefaultCPUs(%s, host of %d CPUs) = %d, want %d", c.base, c.hostCPUs, got, c.want)
		}
	}
	if s := DefaultSettings(); s.CPUs != 0 {
		t.Errorf("DefaultSettings().CPUs = %d; want 0 (unset: DefaultCPUs decides)", s.CPUs)
	}
}

func TestSchemaFormatsAreWhatQEMUOpens(t *testing.T) {
	f := Schema{}.Formats()
	if f[0] != "kernel+initrd" {
		t.Errorf("formats %v: kernel+initrd first", f)
	}
	for _, name := range f {
		if name == "gce" {
			t.Errorf("formats %v include gce, a tarball QEMU cannot open", f)
		}
	}
	if len(f) < 7 {
		t.Errorf("formats %v: want kernel+initrd and the six disk formats QEMU opens", f)
	}
}

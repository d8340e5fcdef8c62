package qemu

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// target is a qemu target with settings s.
func target(s *Settings) *lang.Target {
	return &lang.Target{Name: "dev", Provider: Name, Settings: s}
}

// planned fills spec's forwards from its target, as the reconciler does.
func planned(spec *deploy.Spec) {
	spec.Forwards, _ = deploy.Forwards(spec.Target, spec.App, spec.Image)
}

func TestPlanForwards(t *testing.T) {
	free1, _ := freePort("127.0.0.1")
	spec := &deploy.Spec{
		Target: target(&Settings{Bind: DefaultBind, HostPorts: map[int]int{8080: free1}}),
		Image:  &pack.Image{App: "api", Ports: []int{8080}},
	}
	planned(spec)
	final, boot, err := planForwards(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := Forward{Bind: "127.0.0.1", Host: free1, Guest: 8080}
	if len(final) != 1 || final[0] != want || boot[0] != want {
		t.Errorf("forwards = %v / %v, want %v", final, boot, want)
	}
}

func TestPortConflictMessage(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	spec := &deploy.Spec{
		Target: target(&Settings{Bind: DefaultBind, HostPorts: map[int]int{8080: port}}),
		Image:  &pack.Image{App: "api", Ports: []int{8080}},
	}
	planned(spec)
	_, _, err = planForwards(spec)
	var pe *deploy.PortInUseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want a PortInUseError", err)
	}
	msg := err.Error()
	for _, want := range []string{"app api", "127.0.0.1:" + strconv.Itoa(port), "guest port 8080", "in use"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	pe.Holder = "unikfile instance api-0123456789 (app api, target dev, project /p)"
	if msg := pe.Error(); !strings.Contains(msg, "api-0123456789") || !strings.Contains(msg, "unikfile down") {
		t.Errorf("message with holder: %q", msg)
	}

	// The same port held by the instance being replaced is not a conflict:
	// the new instance boots on a temporary port.
	spec.Replaces = []*state.Instance{{ID: "api-old", Provider: Name, Ports: []state.Port{{Bind: "127.0.0.1", Host: port, Guest: 8080}}}}
	final, boot, err := planForwards(spec)
	if err != nil {
		t.Fatal(err)
	}
	if final[0].Host != port || boot[0].Host == port || boot[0].Guest != 8080 {
		t.Errorf("replacement forwards = %v / %v", final, boot)
	}
}

func TestPlanForwardsRejects(t *testing.T) {
	spec := &deploy.Spec{
		Target: target(&Settings{Bind: "::1"}),
		Image:  &pack.Image{App: "api", Ports: []int{8080}},
	}
	planned(spec)
	if _, _, err := planForwards(spec); err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Errorf("IPv6 bind: %v", err)
	}
	spec = &deploy.Spec{
		Target: target(&Settings{Bind: DefaultBind, HostPorts: map[int]int{80: 9000, 81: 9000}}),
		Image:  &pack.Image{App: "api", Ports: []int{80, 81}},
	}
	planned(spec)
	if _, _, err := planForwards(spec); err == nil || !strings.Contains(err.Error(), "both forwarded from host port 9000") {
		t.Errorf("duplicate host port: %v", err)
	}
}

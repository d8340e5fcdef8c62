package mirage

import (
	"slices"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/stages/compile"
)

func TestBootKeysConfigureTheNetworkTheUnikernelTakes(t *testing.T) {
	net := &compile.MirageUnikernel{Keys: []string{"http-port", "ipv4", "ipv4-gateway", "l", "logs"}}
	for _, c := range []struct {
		name string
		u    *compile.MirageUnikernel
		args []string
		want []string
	}{
		{"static network, then the app's args", net, []string{"--http-port=8080"},
			[]string{"--ipv4=10.0.2.15/24", "--ipv4-gateway=10.0.2.2", "--http-port=8080"}},
		{"the app sets its own address", net, []string{"--ipv4=10.0.2.20/24"},
			[]string{"--ipv4-gateway=10.0.2.2", "--ipv4=10.0.2.20/24"}},
		{"the app sets its own gateway, as a separate word", net, []string{"--ipv4-gateway", "10.0.2.3"},
			[]string{"--ipv4=10.0.2.15/24", "--ipv4-gateway", "10.0.2.3"}},
		{"no network keys (no network, or DHCP)", &compile.MirageUnikernel{Keys: []string{"logs"}}, []string{"-l", "*:debug"},
			[]string{"-l", "*:debug"}},
	} {
		if got := BootKeys(c.u, QEMUUserNet, c.args); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Cmdline quotes as MirageOS's parser reads: what it parses back is what
// went in.
func TestCmdlineRoundTripsThroughMirageParsing(t *testing.T) {
	for _, keys := range [][]string{
		{"--ipv4=10.0.2.15/24", "--ipv4-gateway=10.0.2.2"},
		{"--greeting=hello world", `--path=C:\dir`, `--quote="it's"`, "-l", "*:debug"},
		{"--x='single'", `--y="double" and 'single'`, `\`, "ünïcode"},
	} {
		line, err := Cmdline(keys)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCmdline(line)
		if err != nil || !slices.Equal(back, keys) {
			t.Errorf("%q -> %q -> %q (%v)", keys, line, back, err)
		}
	}
	if line, _ := Cmdline([]string{"--ipv4=10.0.2.15/24", "--http-port=8080"}); line != "--ipv4=10.0.2.15/24 --http-port=8080" {
		t.Errorf("plain keys are quoted: %q", line)
	}
	// The parser itself, as parse-argv: quotes and escapes.
	got, _ := ParseCmdline(`a "b c" 'd \e' f\ g "h\"i"  ''`)
	if want := []string{"a", "b c", `d \e`, "f g", `h"i`}; !slices.Equal(got, want) {
		t.Errorf("parse: %q, want %q", got, want)
	}
	for _, bad := range [][]string{{""}, {"a\nb"}, {"tab\there"}, {strings.Repeat("x", maxCmdline+1)}} {
		if _, err := Cmdline(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

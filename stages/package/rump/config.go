package rump

import (
	"fmt"
	"strings"
)

// MaxConfig is the longest configuration Rumprun takes on the multiboot
// command line (platform/hw: BMK_MULTIBOOT_CMDLINE_SIZE, 4096 bytes with
// the terminating NUL).
const MaxConfig = 4095

// Interface is the network interface of a virtio-net NIC, the one NIC the
// images have (they are baked with hw_virtio's drivers).
const Interface = "vioif0"

// Net is the network configuration of the guest's one interface.
type Net struct {
	If   string // interface: Interface
	DHCP bool   // ask a DHCP server; otherwise Addr/Mask (and Gw) are set
	Addr string // IPv4 address
	Mask int    // prefix length
	Gw   string // default gateway; "" for none
}

// QEMUUserNet is QEMU's user network, whose addresses are fixed: a static
// address saves Rumprun's DHCP exchange at boot (a third of DHCP boots
// were 300 ms slower, BUILD.md of the fixture).
var QEMUUserNet = Net{If: Interface, Addr: "10.0.2.15", Mask: 24, Gw: "10.0.2.2"}

// DHCP is what images that may boot anywhere use (disks for other
// hypervisors and clouds).
var DHCP = Net{If: Interface, DHCP: true}

// Config is what Rumprun configures before it calls main.
type Config struct {
	// Argv is the app's argv, argv[0] included.
	Argv []string
	// Env is KEY=value entries.
	Env []string
	Net Net
}

// JSON is the configuration as Rumprun's config.c parses it. Its JSON
// parser (jsmn) hands string values on as they are written, without
// decoding escapes, so:
//
//   - "cmdline" is one string that rumprun_parseargs splits into argv:
//     blanks separate words, a backslash makes the next character literal,
//     and single quotes group (double quotes would too, but a double quote
//     can only appear in the JSON string as \", which parseargs reads as a
//     literal quote). A word is written with \\ for a backslash and \" for a
//     double quote, and put in single quotes when it is empty or has a
//     blank. A single quote cannot be written (\' is not a JSON escape, and
//     a bare one starts or ends a group), nor can control characters.
//   - "env" is repeated, one "KEY=value" each, and reaches putenv as
//     written: a double quote or a backslash in it would arrive escaped,
//     so neither can be written.
//   - "net" is an object of strings only ("mask" is the prefix length as
//     a string); an unknown key stops the boot.
//
// The result is at most MaxConfig bytes.
func (c Config) JSON() (string, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return "", fmt.Errorf("the app's command needs a program name (argv[0])")
	}
	var b strings.Builder
	b.WriteString("{")
	netJSON, err := c.Net.json()
	if err != nil {
		return "", err
	}
	b.WriteString(`"net":` + netJSON)
	for _, e := range c.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("environment entry %q: want KEY=value", e)
		}
		if err := checkEnv(k, e); err != nil {
			return "", err
		}
		b.WriteString(`,"env":"` + e + `"`)
	}
	words := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		w, err := word(a)
		if err != nil {
			return "", fmt.Errorf("argument %d (%q): %w", i, a, err)
		}
		words[i] = w
	}
	b.WriteString(`,"cmdline":"` + strings.Join(words, " ") + `"}`)
	out := b.String()
	if len(out) > MaxConfig {
		return "", fmt.Errorf("Rumprun's configuration would be %d bytes, more than the %d its command line takes; shorten the app's args and env", len(out), MaxConfig)
	}
	return out, nil
}

// CheckArg says why Rumprun's command line cannot carry a, or nil.
func CheckArg(a string) error {
	_, err := word(a)
	return err
}

// CheckEnv says why Rumprun's configuration cannot carry the variable
// name=value, or nil.
func CheckEnv(name, value string) error { return checkEnv(name, name+"="+value) }

func checkEnv(name, entry string) error {
	if hasControl(entry) {
		return fmt.Errorf("environment variable %s: Rumprun's configuration cannot carry control characters (a newline, a tab)", name)
	}
	if strings.ContainsAny(entry, `"\`) {
		return fmt.Errorf("environment variable %s: Rumprun's configuration parser passes environment values on without decoding JSON escapes, so a value cannot hold a double quote or a backslash", name)
	}
	return nil
}

// word is a as one word of the cmdline string (see JSON).
func word(a string) (string, error) {
	if hasControl(a) {
		return "", fmt.Errorf("Rumprun's command line cannot carry control characters (a newline, a tab)")
	}
	if strings.Contains(a, "'") {
		return "", fmt.Errorf("Rumprun's command line cannot carry a single quote (its argument parser has no escape for one inside its configuration's JSON)")
	}
	w := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a)
	if a == "" || strings.Contains(a, " ") {
		w = "'" + w + "'"
	}
	return w, nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// json is the "net" object.
func (n Net) json() (string, error) {
	if n.If == "" {
		return "", fmt.Errorf("the network configuration names no interface")
	}
	for _, v := range []string{n.If, n.Addr, n.Gw} {
		if strings.ContainsAny(v, "\"\\ ") || hasControl(v) {
			return "", fmt.Errorf("network setting %q is not an interface name or an address", v)
		}
	}
	fields := [][2]string{{"if", n.If}, {"type", "inet"}}
	if n.DHCP {
		fields = append(fields, [2]string{"method", "dhcp"})
	} else {
		if n.Addr == "" || n.Mask <= 0 || n.Mask > 32 {
			return "", fmt.Errorf("a static network needs an address and a prefix length of 1-32 (got %s/%d)", n.Addr, n.Mask)
		}
		fields = append(fields, [2]string{"method", "static"}, [2]string{"addr", n.Addr}, [2]string{"mask", fmt.Sprint(n.Mask)})
		if n.Gw != "" {
			fields = append(fields, [2]string{"gw", n.Gw})
		}
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = `"` + f[0] + `":"` + f[1] + `"`
	}
	return "{" + strings.Join(parts, ",") + "}", nil
}

// WithNet is configuration js (written by Config.JSON) with its network
// replaced by n.
func WithNet(js string, n Net) (string, error) {
	const prefix = `{"net":{`
	if !strings.HasPrefix(js, prefix) {
		return "", fmt.Errorf("the image's configuration %q was not written by this version of unikfile; build it again", js)
	}
	end := strings.IndexByte(js[len(prefix):], '}')
	if end < 0 {
		return "", fmt.Errorf("the image's configuration %q has no network object", js)
	}
	netJSON, err := n.json()
	if err != nil {
		return "", err
	}
	out := `{"net":` + netJSON + js[len(prefix)+end+1:]
	if len(out) > MaxConfig {
		return "", fmt.Errorf("Rumprun's configuration would be %d bytes, more than the %d its command line takes; shorten the app's args and env", len(out), MaxConfig)
	}
	return out, nil
}

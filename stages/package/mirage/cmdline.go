package mirage

import (
	"fmt"
	"strings"

	"github.com/unikfile/unikfile/stages/compile"
)

// Net is the network a unikernel is configured with through its boot
// parameters.
type Net struct {
	// IPv4 is the address and prefix (10.0.2.15/24); "" leaves the
	// unikernel's own choice (DHCP, when it was configured with it).
	IPv4    string
	Gateway string
}

// QEMUUserNet is QEMU's user network, which direct-boot images boot on:
// the guest is 10.0.2.15, the gateway 10.0.2.2.
var QEMUUserNet = Net{IPv4: "10.0.2.15/24", Gateway: "10.0.2.2"}

// maxCmdline bounds the boot parameters: Solo5's virtio bindings keep
// 8192 bytes of the multiboot command line, which QEMU starts with the
// kernel's path.
const maxCmdline = 4096

// BootKeys are the unikernel's boot parameters: the network, for the
// keys the unikernel takes (--ipv4, --ipv4-gateway; not when the app's
// args set them, since a key may be given once), then the app's args.
func BootKeys(u *compile.MirageUnikernel, net Net, args []string) []string {
	var keys []string
	add := func(key, value string) {
		if value == "" || !u.HasKey(key) {
			return
		}
		for _, a := range args {
			if a == "--"+key || strings.HasPrefix(a, "--"+key+"=") {
				return
			}
		}
		keys = append(keys, "--"+key+"="+value)
	}
	add("ipv4", net.IPv4)
	add("ipv4-gateway", net.Gateway)
	return append(keys, args...)
}

// CheckArg says why arg cannot be a boot parameter of a Solo5 unikernel:
// MirageOS drops empty words, and a command line is one line.
func CheckArg(arg string) error {
	if arg == "" {
		return fmt.Errorf("an empty argument cannot reach a MirageOS unikernel (its command line parser drops empty words)")
	}
	for _, r := range arg {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("argument %q holds a control character; a Solo5 command line is one line of printable text", arg)
		}
	}
	return nil
}

// Cmdline joins boot parameters into the command line Solo5 hands to
// MirageOS (-append), quoted as MirageOS's parser (parse-argv) reads it:
// words split at white space, and a backslash takes the next character
// as it is, so white space, quotes and backslashes are escaped with one.
func Cmdline(keys []string) (string, error) {
	words := make([]string, len(keys))
	for i, k := range keys {
		if err := CheckArg(k); err != nil {
			return "", err
		}
		var w strings.Builder
		for _, r := range k {
			switch r {
			case ' ', '\\', '\'', '"':
				w.WriteByte('\\')
			}
			w.WriteRune(r)
		}
		words[i] = w.String()
	}
	line := strings.Join(words, " ")
	if len(line) > maxCmdline {
		return "", fmt.Errorf("the unikernel's boot parameters are %d bytes, more than the %d it takes; shorten the app's args", len(line), maxCmdline)
	}
	return line, nil
}

// ParseCmdline splits a command line as MirageOS's parser does (for
// tests and inspection): white space separates words, a backslash takes
// the next character as it is outside single quotes, single quotes take
// everything up to the next one, double quotes everything up to the next
// unescaped one; empty words are dropped.
func ParseCmdline(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	quote := rune(0)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r == '\'':
			quote = 0
		case quote == '\'':
			cur.WriteRune(r)
		case r == '\\':
			if i+1 == len(rs) {
				return nil, fmt.Errorf("invalid escaping at end of string")
			}
			i++
			cur.WriteRune(rs[i])
		case quote == '"' && r == '"':
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && isWhite(r):
			if cur.Len() > 0 {
				words = append(words, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}

// isWhite is OCaml's Astring Char.Ascii.is_white.
func isWhite(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

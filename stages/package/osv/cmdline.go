package osv

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxCmdline is the longest command line OSv takes (include/osv/commands.hh).
const MaxCmdline = 1024

// Net is how the guest gets its address: DHCP, or a static address.
type Net struct {
	DHCP    bool
	IP      string // static: address, netmask, gateway, name server
	Netmask string
	Gateway string
	DNS     string
}

// QEMUUserNet is QEMU's user network, whose addresses are fixed: a static
// address saves OSv's DHCP exchange at boot.
var QEMUUserNet = Net{IP: "10.0.2.15", Netmask: "255.255.255.0", Gateway: "10.0.2.2", DNS: "10.0.2.3"}

// DHCP is what images that may boot anywhere use (disks for clouds and
// other hypervisors): OSv's own DHCP client.
var DHCP = Net{DHCP: true}

// Command is what OSv runs and how.
type Command struct {
	Argv []string // the program (an absolute path in the image), then its arguments
	Env  []string // KEY=value
	Dir  string   // working directory; "" is /
	Net  Net
	// Options are more kernel options (osv { options = [...] }), placed
	// before the app.
	Options []string
	// ReadyPorts, if any, are the ports the readiness helper (ReadyPath)
	// waits for; OSv then runs it first, detached ("&!"), and the app in
	// the foreground, so that the app's end ends OSv.
	ReadyPorts []int
}

// baseOptions are in every command line:
//   - --console=serial: the console on the first serial port only;
//   - --rootfs=rofs: mount the ROFS of /dev/vblk0.1 (partition #2 of the
//     first disk) as /;
//   - --verbose: OSv's own messages on the console, among them the app's
//     exit status ("program exited with status N"), which ExitStatus reads;
//   - --power-off-on-abort: a crash powers the machine off (QEMU exits)
//     instead of halting it.
var baseOptions = []string{"--console=serial", "--rootfs=rofs", "--verbose", "--power-off-on-abort"}

// Cmdline is OSv's command line for c: kernel options, then the app's
// command as OSv's parser reads it (core/commands.cc: words, or quoted
// strings with backslash escapes). Kernel options escape blanks and
// backslashes with a backslash. OSv replaces $NAME in every word of the
// app's command with the variable's value and has no escape for it, so a
// word with a $ is an error, as is a line longer than MaxCmdline.
func Cmdline(c Command) (string, error) {
	if len(c.Argv) == 0 || !strings.HasPrefix(c.Argv[0], "/") {
		return "", fmt.Errorf("the app's command %q must start with the program's absolute path in the image", c.Argv)
	}
	netOpts, err := netOptions(c.Net)
	if err != nil {
		return "", err
	}
	opts := append(append([]string(nil), baseOptions...), netOpts...)
	for _, e := range c.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\n\\") {
			return "", fmt.Errorf("environment entry %q: want KEY=value with a KEY of no blanks", e)
		}
		if strings.ContainsAny(e, "\x00\n") {
			return "", fmt.Errorf("environment variable %s: OSv's command line cannot carry a NUL or a newline", k)
		}
		opts = append(opts, "--env="+escapeOption(e))
	}
	if c.Dir != "" && c.Dir != "/" {
		opts = append(opts, "--cwd="+escapeOption(c.Dir))
	}
	for _, o := range c.Options {
		if !strings.HasPrefix(o, "--") || strings.ContainsAny(o, " \t\n") {
			return "", fmt.Errorf("kernel option %q: OSv's options are single words starting with --", o)
		}
		opts = append(opts, o)
	}
	var words []string
	if len(c.ReadyPorts) > 0 {
		words = append(words, ReadyPath)
		for _, p := range c.ReadyPorts {
			words = append(words, strconv.Itoa(p))
		}
		words = append(words, "&!")
	}
	for _, a := range c.Argv {
		if strings.Contains(a, "$") {
			return "", fmt.Errorf("argument %q: OSv replaces $NAME in the command line with the variable's value and cannot pass a literal $; pass the value through env instead", a)
		}
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("argument %q: OSv's command line cannot carry a NUL", a)
		}
		words = append(words, quoteWord(a))
	}
	line := strings.Join(append(opts, words...), " ")
	if len(line) > MaxCmdline {
		return "", fmt.Errorf("OSv's command line would be %d bytes, more than the %d it takes; shorten the app's args and env: %s", len(line), MaxCmdline, line)
	}
	return line, nil
}

// netOptions are the kernel options of n: none for DHCP, which OSv runs
// by default.
func netOptions(n Net) ([]string, error) {
	if n.DHCP {
		return nil, nil
	}
	if n.IP == "" || n.Netmask == "" {
		return nil, fmt.Errorf("a static network needs an address and a netmask (got %+v)", n)
	}
	for _, v := range []string{n.IP, n.Netmask, n.Gateway, n.DNS} {
		if strings.ContainsAny(v, " \t\n\\,") {
			return nil, fmt.Errorf("network setting %q is not an address", v)
		}
	}
	opts := []string{"--ip=eth0," + n.IP + "," + n.Netmask}
	if n.Gateway != "" {
		opts = append(opts, "--defaultgw="+n.Gateway)
	}
	if n.DNS != "" {
		opts = append(opts, "--nameserver="+n.DNS)
	}
	return opts, nil
}

// netOption reports whether a kernel option sets the network.
func netOption(o string) bool {
	for _, p := range []string{"--ip=", "--defaultgw=", "--nameserver="} {
		if strings.HasPrefix(o, p) {
			return true
		}
	}
	return false
}

// replaceNet is cmdline (Cmdline's) with its network options replaced by
// n's, placed where Cmdline places them.
func replaceNet(cmdline string, n Net) (string, error) {
	netOpts, err := netOptions(n)
	if err != nil {
		return "", err
	}
	opts, rest := splitOptions(cmdline)
	var kept []string
	for _, o := range opts {
		if !netOption(o) {
			kept = append(kept, o)
		}
	}
	at := 0
	for at < len(kept) && at < len(baseOptions) && kept[at] == baseOptions[at] {
		at++
	}
	out := append(append(append([]string(nil), kept[:at]...), netOpts...), kept[at:]...)
	return strings.TrimSuffix(strings.Join(out, " ")+" "+rest, " "), nil
}

// splitOptions splits a command line into its kernel options (escaped
// words before the first word not starting with "-", as OSv's
// loader_parse_cmdline does; kept escaped) and the rest.
func splitOptions(cmdline string) ([]string, string) {
	var opts []string
	s := cmdline
	for {
		s = strings.TrimLeft(s, " \t\n")
		if !strings.HasPrefix(s, "-") {
			return opts, s
		}
		end := 0
		for end < len(s) && !strings.ContainsRune(" \t\n", rune(s[end])) {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end, len(s))
		opts = append(opts, s[:end])
		s = s[end:]
	}
}

// escapeOption escapes what ends a kernel option (blanks) and the escape
// character itself.
func escapeOption(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// plain are the bytes a word may hold and stay unquoted.
func plain(s string) bool {
	if s == "" || s[0] == '-' && len(s) == 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("/._-=:,+@%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// quoteWord writes a word of the app's command: as it is when plain,
// else between double quotes with OSv's escapes.
func quoteWord(s string) string {
	if plain(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\v':
			b.WriteString(`\v`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

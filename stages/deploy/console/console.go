package console

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/unikfile/unikfile/guest"
	pack "github.com/unikfile/unikfile/stages/package"
)

// TailLines is how many console lines an error quotes.
const TailLines = 20

// Scanner reads a guest's console as it arrives (it is an io.Writer) and
// records what the guest init's markers say. Markers count only at the
// start of a line, so that an app echoing one in its own output does not
// fake it. It is not safe for concurrent use.
type Scanner struct {
	// Out, if set, receives every complete line (without carriage
	// returns).
	Out io.Writer
	// OnError, if set, receives each of the init's error lines (without
	// the "unikfile-init: " prefix) as it appears.
	OnError func(line string)
	// Protocol, if set, is the guest's own console protocol (the image's
	// Console), read instead of the init's markers. Set it before the
	// first Write.
	Protocol *pack.ConsoleProtocol

	rules *rules

	partial []byte
	last    []string // the last TailLines complete lines
	errs    []string // the init's last error lines, without the prefix
	ready   bool
	exit    *int
	address string
	button  bool
}

// Write feeds console bytes; it never fails.
func (s *Scanner) Write(b []byte) (int, error) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		s.line(strings.TrimRight(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
}

// Flush treats an unterminated last line as complete (the guest is gone).
func (s *Scanner) Flush() {
	if len(s.partial) > 0 {
		s.line(strings.TrimRight(string(s.partial), "\r"))
		s.partial = nil
	}
}

func (s *Scanner) line(l string) {
	if s.Out != nil {
		_, _ = io.WriteString(s.Out, l+"\n")
	}
	s.last = append(s.last, l)
	if len(s.last) > TailLines {
		s.last = s.last[len(s.last)-TailLines:]
	}
	if s.Protocol != nil {
		if s.rules == nil {
			s.rules = compile(s.Protocol)
		}
		if s.Protocol.Ready != "" && strings.HasPrefix(l, s.Protocol.Ready) {
			s.ready = true
		}
		if st, ok := s.rules.exit(l); ok && s.exit == nil {
			s.exit = &st
		}
		if a, ok := s.rules.addr(l); ok {
			s.address = a
		}
		return
	}
	if strings.HasPrefix(l, guest.ReadyMarker) {
		s.ready = true
	}
	if strings.HasPrefix(l, guest.PowerButtonMarker) {
		s.button = true
	}
	if strings.HasPrefix(l, guest.ErrorPrefix) {
		s.errs = append(s.errs, strings.TrimPrefix(l, guest.ErrorPrefix))
		if len(s.errs) > maxErrors {
			s.errs = s.errs[len(s.errs)-maxErrors:]
		}
		if s.OnError != nil {
			s.OnError(strings.TrimPrefix(l, "unikfile-init: "))
		}
	}
	if st, ok := ExitStatus(l); ok && s.exit == nil {
		s.exit = &st
	}
	if a, ok := Address(l); ok {
		s.address = a
	}
}

// maxErrors is how many of the init's error lines a Scanner keeps.
const maxErrors = 5

// Errors is the init's last error lines (without guest.ErrorPrefix), oldest
// first: what a host quotes when the guest did not become ready (the app
// listens on other ports than declared, on loopback only, the network
// failed).
func (s *Scanner) Errors() []string { return s.errs }

// rules is a ConsoleProtocol compiled. A pattern that does not compile
// matches nothing (images are written by unikfile's bases, whose tests
// compile them).
type rules struct {
	exits  []exitRule
	addrRe *regexp.Regexp
}

type exitRule struct {
	re     *regexp.Regexp
	status int
}

func compile(p *pack.ConsoleProtocol) *rules {
	r := &rules{}
	for _, e := range p.Exits {
		if re, err := regexp.Compile("^(?:" + e.Pattern + ")$"); err == nil {
			r.exits = append(r.exits, exitRule{re, e.Status})
		}
	}
	if p.Address != "" {
		r.addrRe, _ = regexp.Compile("^(?:" + p.Address + ")$")
	}
	return r
}

func (r *rules) exit(line string) (int, bool) {
	for _, e := range r.exits {
		m := e.re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if len(m) < 2 {
			return e.status, true
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		return n & 0xff, true
	}
	return 0, false
}

func (r *rules) addr(line string) (string, bool) {
	if r.addrRe == nil {
		return "", false
	}
	if m := r.addrRe.FindStringSubmatch(line); len(m) > 1 && m[1] != "" {
		return m[1], true
	}
	return "", false
}

// Ready says the guest printed guest.ReadyMarker (every declared port
// listens), or with a Protocol its Ready line; a Protocol without a Ready
// line has none to wait for, and the provider goes by its Accepts.
func (s *Scanner) Ready() bool {
	return s.ready || s.Protocol != nil && s.Protocol.Ready == ""
}

// Exit is the app's exit status once the guest printed it, else nil.
func (s *Scanner) Exit() *int { return s.exit }

// PowerButton says the guest's init printed guest.PowerButtonMarker: it
// stops the app on the ACPI power button. A provider whose console does
// not keep the boot's start (virtlogd rotates it away) records it.
func (s *Scanner) PowerButton() bool { return s.button }

// Address is the guest's IPv4 address as its init last printed it
// (guest.AddressMarker), or "".
func (s *Scanner) Address() string { return s.address }

// Tail is the last console lines, for error messages.
func (s *Scanner) Tail() string {
	if len(s.last) == 0 {
		return "(the console is empty)"
	}
	return strings.Join(s.last, "\n")
}

// ExitStatus parses a line holding guest.ExitMarker and a decimal status.
func ExitStatus(line string) (int, bool) {
	rest, ok := strings.CutPrefix(line, guest.ExitMarker)
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(rest) && (rest[end] >= '0' && rest[end] <= '9' || end == 0 && rest[end] == '-') {
		end++
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0, false
	}
	return n, true
}

// Address parses a line holding guest.AddressMarker: the guest's address
// without its prefix length ("10.0.2.15" of "10.0.2.15/24 via dhcp").
func Address(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, guest.AddressMarker)
	if !ok {
		return "", false
	}
	addr, _, _ := strings.Cut(rest, " ")
	addr, _, _ = strings.Cut(addr, "/")
	return addr, addr != ""
}

// LastExit is the app's exit status printed in text (the end of a
// console), the last one if there are several, else nil.
func LastExit(text []byte) *int { return LastExitWith(text, nil) }

// LastExitWith is LastExit for a guest with its own console protocol
// (nil: the init's markers): the status of the last boot's first exit
// line.
func LastExitWith(text []byte, p *pack.ConsoleProtocol) *int {
	lines := strings.Split(string(text), "\n")
	if p == nil {
		for i := len(lines) - 1; i >= 0; i-- {
			if st, ok := ExitStatus(strings.TrimRight(lines[i], "\r")); ok {
				return &st
			}
		}
		return nil
	}
	r := compile(p)
	start := 0
	for i := len(lines) - 1; i >= 0 && p.Boot != ""; i-- {
		if strings.HasPrefix(strings.TrimRight(lines[i], "\r"), p.Boot) {
			start = i
			break
		}
	}
	for _, l := range lines[start:] {
		if st, ok := r.exit(strings.TrimRight(l, "\r")); ok {
			return &st
		}
	}
	return nil
}

// StripCR is a writer that drops carriage returns: serial consoles end
// lines with CRLF.
type StripCR struct{ W io.Writer }

func (s StripCR) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\r') < 0 {
		return s.W.Write(p)
	}
	if _, err := s.W.Write(bytes.ReplaceAll(p, []byte{'\r'}, nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

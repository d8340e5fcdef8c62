package rump

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The tests below check Config.JSON against a model of what Rumprun does
// with its command line (b04d422, lib/librumprun_base/config.c and
// parseargs.c, lib/libbmk_core/jsmn.c): jsmn in its non-strict mode, which
// keeps string values as written; the top-level loop that matches keys
// with strncmp over the key's length and hands each to its handler; and
// rumprun_parseargs, which splits cmdline into argv. The boot tests run
// the real parser.

type tokType int

const (
	tokPrimitive tokType = iota
	tokObject
	tokArray
	tokString
)

type token struct {
	typ              tokType
	start, end, size int
}

var errJSON = errors.New("json parse failed")

// jsmn tokenises js as jsmn.c does without JSMN_STRICT or parent links.
func jsmn(js string) ([]token, error) {
	var toks []token
	super := -1
	for pos := 0; pos < len(js) && js[pos] != 0; pos++ {
		c := js[pos]
		switch c {
		case '{', '[':
			t := token{typ: tokObject, start: pos, end: -1}
			if c == '[' {
				t.typ = tokArray
			}
			if super != -1 {
				toks[super].size++
			}
			toks = append(toks, t)
			super = len(toks) - 1
		case '}', ']':
			typ := tokObject
			if c == ']' {
				typ = tokArray
			}
			i := len(toks) - 1
			for ; i >= 0; i-- {
				if toks[i].start != -1 && toks[i].end == -1 {
					if toks[i].typ != typ {
						return nil, errJSON
					}
					super = -1
					toks[i].end = pos + 1
					break
				}
			}
			if i == -1 {
				return nil, errJSON
			}
			for ; i >= 0; i-- {
				if toks[i].start != -1 && toks[i].end == -1 {
					super = i
					break
				}
			}
		case '"':
			start := pos
			pos++
			done := false
			for ; pos < len(js) && js[pos] != 0; pos++ {
				if js[pos] == '"' {
					toks = append(toks, token{typ: tokString, start: start + 1, end: pos})
					done = true
					break
				}
				if js[pos] == '\\' && pos+1 < len(js) {
					pos++
					switch js[pos] {
					case '"', '/', '\\', 'b', 'f', 'r', 'n', 't':
					case 'u':
						pos++
						for i := 0; i < 4 && pos < len(js) && js[pos] != 0; i++ {
							if !strings.ContainsRune("0123456789abcdefABCDEF", rune(js[pos])) {
								return nil, errJSON
							}
							pos++
						}
						pos--
					default:
						return nil, errJSON
					}
				}
			}
			if !done {
				return nil, errJSON
			}
			if super != -1 {
				toks[super].size++
			}
		case '\t', '\r', '\n', ' ':
		case ':':
			super = len(toks) - 1
		case ',':
			if super >= 0 && toks[super].typ != tokArray && toks[super].typ != tokObject {
				for i := len(toks) - 1; i >= 0; i-- {
					if (toks[i].typ == tokArray || toks[i].typ == tokObject) && toks[i].start != -1 && toks[i].end == -1 {
						super = i
						break
					}
				}
			}
		default:
			start := pos
			for ; pos < len(js) && js[pos] != 0; pos++ {
				if strings.IndexByte(":\t\r\n ,]}", js[pos]) >= 0 {
					break
				}
				if js[pos] < 32 || js[pos] >= 127 {
					return nil, errJSON
				}
			}
			toks = append(toks, token{typ: tokPrimitive, start: start, end: pos})
			pos--
			if super != -1 {
				toks[super].size++
			}
		}
	}
	for _, t := range toks {
		if t.start != -1 && t.end == -1 {
			return nil, errJSON
		}
	}
	return toks, nil
}

// parseargs is rumprun_parseargs.
func parseargs(s string) []string {
	p := []byte(s + "\x00")
	var out []string
	var cur []byte
	in := false // inside an argument
	quote := byte(0)
	for i := 0; ; {
		ac := p[i]
		i++
		rc := ac
		if ac == '\\' {
			rc = p[i]
			i++
		}
		if rc == 0 || ac == ' ' || ac == '\n' || ac == '\t' {
			if rc == 0 || (in && quote == 0) {
				if in {
					out = append(out, string(cur))
				}
				in, cur = false, nil
			}
			if rc == 0 {
				break
			}
			if !in {
				continue
			}
		}
		if !in {
			in, quote = true, 0
		}
		if quote > 0 && ac == quote {
			quote = 0
			continue
		}
		if ac == '\'' || ac == '"' {
			quote = ac
			continue
		}
		cur = append(cur, rc)
	}
	return out
}

// parsed is what Rumprun makes of a configuration.
type parsed struct {
	argv []string
	env  []string
	net  map[string]string
}

// rumprunConfig is rumprun_config on cmdline: errors where Rumprun stops
// the boot with errx.
func rumprunConfig(cmdline string) (*parsed, error) {
	i := strings.IndexByte(cmdline, '{')
	if i < 0 {
		return nil, errors.New("no json")
	}
	js := cmdline[i:]
	toks, err := jsmn(js)
	if err != nil || len(toks) == 0 || toks[0].typ != tokObject {
		return nil, errJSON
	}
	str := func(t token) string { return js[t.start:t.end] }
	// T_STREQ: strncmp over the key's length, so a key matches every
	// handler name it is a prefix of.
	streq := func(t token, name string) bool { return strings.HasPrefix(name, str(t)) }
	out := &parsed{}
	handlers := []string{"cmdline", "rc_TESTING", "env", "hostname", "blk", "net"}
	for ti := 0; ti < len(toks); {
		t := toks[ti]
		if t.typ == tokObject {
			ti++
			continue
		}
		if t.typ != tokString {
			return nil, fmt.Errorf("unexpected type for token %q", str(t))
		}
		h := ""
		for _, name := range handlers {
			if streq(t, name) {
				h = name
				break
			}
		}
		ti++
		if ti >= len(toks) {
			return nil, errors.New("key without value")
		}
		v := toks[ti]
		switch h {
		case "cmdline":
			if v.typ != tokString {
				return nil, errors.New("cmdline is not a string")
			}
			if out.argv != nil {
				return nil, errors.New("a second cmdline (Rumprun would run the program twice)")
			}
			out.argv = parseargs(str(v))
			ti++
		case "env":
			if v.typ != tokString {
				return nil, errors.New("env is not a string")
			}
			out.env = append(out.env, str(v))
			ti++
		case "net":
			if v.typ != tokObject {
				return nil, errors.New("net is not an object")
			}
			if out.net != nil {
				return nil, errors.New(`currently only 1 "net" configuration is supported`)
			}
			out.net = map[string]string{}
			for k := 0; k < v.size; k++ {
				key, val := toks[ti+1+2*k], toks[ti+2+2*k]
				if key.typ != tokString || val.typ != tokString || val.size != 0 {
					return nil, errors.New("net values must be strings")
				}
				name := str(key)
				switch name {
				case "if", "cloner", "type", "method", "addr", "mask", "gw":
				default:
					return nil, fmt.Errorf("unexpected key %q in handle_net", name)
				}
				out.net[name] = str(val)
			}
			ti += 2*v.size + 1
		default:
			return nil, fmt.Errorf("no match for key %q", str(t))
		}
	}
	if out.argv == nil {
		return nil, errors.New("rumprun_config: no bins")
	}
	return out, nil
}

func TestModelParsesTheFixtureConfiguration(t *testing.T) {
	// The command line BUILD.md boots the fixture's httpd with.
	p, err := rumprunConfig(`{"net":{"if":"vioif0","type":"inet","method":"static","addr":"10.0.2.15","mask":"24","gw":"10.0.2.2"},"cmdline":"httpd 8080"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.argv, []string{"httpd", "8080"}) || p.net["mask"] != "24" {
		t.Fatalf("%+v", p)
	}
	// What the boot test saw the real parser do (ret.c printing argv).
	p, err = rumprunConfig(`{"env":"FOO=a b",,"cmdline":"ret 'a b' '' c\\\\d e\\\"f",}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ret", "a b", "", `c\\d`, `e\"f`}; !reflect.DeepEqual(p.argv, want) {
		t.Fatalf("argv %q, want %q", p.argv, want)
	}
}

func TestConfigJSON(t *testing.T) {
	got, err := Config{Argv: []string{"api", "8080"}, Env: []string{"A=1", "LOG=info debug"}, Net: QEMUUserNet}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"net":{"if":"vioif0","type":"inet","method":"static","addr":"10.0.2.15","mask":"24","gw":"10.0.2.2"},"env":"A=1","env":"LOG=info debug","cmdline":"api 8080"}`
	if got != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
	got, err = Config{Argv: []string{"api"}, Net: DHCP}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"net":{"if":"vioif0","type":"inet","method":"dhcp"},"cmdline":"api"}`; got != want {
		t.Errorf("DHCP:\n got %s\nwant %s", got, want)
	}
}

// Whatever JSON writes, Rumprun's parser reads back as the same argv, env
// and network.
func TestConfigRoundTrip(t *testing.T) {
	cases := []Config{
		{Argv: []string{"api"}, Net: QEMUUserNet},
		{Argv: []string{"api", "-listen", ":8080", "a b", "", "  ", `back\slash`, `"quoted"`, `say "hi" \now`, "{json}", "a,b:c", "naïve ☃"}, Net: DHCP},
		{Argv: []string{"x", `\`, `\\`, `"`, `\"`, "ends with \\"}, Env: []string{"EMPTY=", "SPACES=a  b ", "EQ=a=b=c", "BRACES={}", "UNICODE=ü"}, Net: QEMUUserNet},
	}
	for i, c := range cases {
		js, err := c.JSON()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		p, err := rumprunConfig(js)
		if err != nil {
			t.Fatalf("case %d: Rumprun's parser refuses %s: %v", i, js, err)
		}
		if !reflect.DeepEqual(p.argv, c.Argv) {
			t.Errorf("case %d: argv %q, want %q (from %s)", i, p.argv, c.Argv, js)
		}
		if len(c.Env) > 0 && !reflect.DeepEqual(p.env, c.Env) {
			t.Errorf("case %d: env %q, want %q", i, p.env, c.Env)
		}
		want := map[string]string{"if": c.Net.If, "type": "inet", "method": "dhcp"}
		if !c.Net.DHCP {
			want = map[string]string{"if": c.Net.If, "type": "inet", "method": "static", "addr": c.Net.Addr, "mask": fmt.Sprint(c.Net.Mask), "gw": c.Net.Gw}
		}
		if !reflect.DeepEqual(p.net, want) {
			t.Errorf("case %d: net %v, want %v", i, p.net, want)
		}
	}
}

func TestConfigRefusesWhatRumprunCannotCarry(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Net: DHCP}, "program name"},
		{Config{Argv: []string{"a", "it's"}, Net: DHCP}, "single quote"},
		{Config{Argv: []string{"a", "two\nlines"}, Net: DHCP}, "control characters"},
		{Config{Argv: []string{"a", "tab\t"}, Net: DHCP}, "control characters"},
		{Config{Argv: []string{"a"}, Env: []string{`Q=say "hi"`}, Net: DHCP}, "double quote or a backslash"},
		{Config{Argv: []string{"a"}, Env: []string{`P=C:\dir`}, Net: DHCP}, "double quote or a backslash"},
		{Config{Argv: []string{"a"}, Env: []string{"N=a\nb"}, Net: DHCP}, "control characters"},
		{Config{Argv: []string{"a"}, Env: []string{"novalue"}, Net: DHCP}, "KEY=value"},
		{Config{Argv: []string{"a", strings.Repeat("x", MaxConfig)}, Net: DHCP}, "more than the 4095"},
		{Config{Argv: []string{"a"}, Net: Net{If: Interface}}, "prefix length"},
		{Config{Argv: []string{"a"}}, "no interface"},
	} {
		_, err := tc.cfg.JSON()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// The largest configuration that fits is accepted, and parsed.
	base, _ := Config{Argv: []string{"a", "y"}, Net: DHCP}.JSON()
	fill := strings.Repeat("y", MaxConfig-len(base)+1)
	js, err := Config{Argv: []string{"a", fill}, Net: DHCP}.JSON()
	if err != nil || len(js) != MaxConfig {
		t.Fatalf("%d bytes: %v", len(js), err)
	}
	if p, err := rumprunConfig(js); err != nil || p.argv[1] != fill {
		t.Fatalf("the longest configuration: %v", err)
	}
}

// The model is strict where Rumprun is: it refuses what would stop a boot.
func TestModelRefusesWhatRumprunRefuses(t *testing.T) {
	for _, js := range []string{
		`{"net":{"if":"vioif0","type":"inet","method":"static","addr":"10.0.2.15","mask":24},"cmdline":"a"}`, // a number
		`{"net":{"if":"vioif0","netmask":"24"},"cmdline":"a"}`,                                               // unknown key
		`{"cmdline":"a \' b"}`, // not a JSON escape
		`{"args":"a"}`,         // unknown top-level key
		`{"env":"A=1"}`,        // no cmdline
	} {
		if p, err := rumprunConfig(js); err == nil {
			t.Errorf("%s: parsed as %+v", js, p)
		}
	}
}

// A disk's configuration is the image's with the network switched to
// DHCP, the rest untouched.
func TestWithNet(t *testing.T) {
	c := Config{Argv: []string{"api", "a b"}, Env: []string{"X=}{"}, Net: QEMUUserNet}
	js, _ := c.JSON()
	got, err := WithNet(js, DHCP)
	if err != nil {
		t.Fatal(err)
	}
	c.Net = DHCP
	if want, _ := c.JSON(); got != want {
		t.Errorf("WithNet:\n got %s\nwant %s", got, want)
	}
	if _, err := WithNet(`{"cmdline":"a"}`, DHCP); err == nil {
		t.Error("a configuration of another writer was rewritten")
	}
}

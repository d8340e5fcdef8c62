package main

import (
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/guest"
)

func TestParseConfig(t *testing.T) {
	c, err := parseConfig([]byte(`{"app":"api","argv":["/app","-listen",":8080"],"ports":[8080],
		"modules":["/lib/modules/x/virtio.ko"],"net":{"dhcp":true,"static":{"address":"10.0.2.15/24","gateway":"10.0.2.2","dns":["10.0.2.3"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Net.DHCPTimeoutMillis != defaultDHCPTimeoutMillis {
		t.Errorf("dhcp timeout default %d", c.Net.DHCPTimeoutMillis)
	}
	if c.App != "api" || len(c.Argv) != 3 || c.Ports[0] != 8080 || c.Net.Static.Gateway != "10.0.2.2" {
		t.Errorf("decoded %+v", c)
	}

	for name, tc := range map[string]struct{ json, want string }{
		"empty argv":    {`{"argv":[]}`, "argv is empty"},
		"unknown field": {`{"argv":["/a"],"cmd":"x"}`, "unknown field"},
		"bad port":      {`{"argv":["/a"],"ports":[70000]}`, "port 70000"},
		"bad static":    {`{"argv":["/a"],"net":{"static":{"address":"10.0.2.15"}}}`, "IPv4 CIDR"},
		"bad gateway":   {`{"argv":["/a"],"net":{"static":{"address":"10.0.2.15/24","gateway":"x"}}}`, "gateway"},
		"not json":      {`argv`, "parse"},
	} {
		_, err := parseConfig([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestParseStaticQEMU(t *testing.T) {
	c, err := parseStatic(&guest.QEMUUserNet)
	if err != nil {
		t.Fatal(err)
	}
	want := &ipv4Config{Source: "static", IP: net.IP{10, 0, 2, 15}, Mask: net.CIDRMask(24, 32),
		Gateway: net.IP{10, 0, 2, 2}, DNS: []net.IP{net.ParseIP("10.0.2.3")}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %#v\nwant %#v", c, want)
	}
}

func TestAppEnv(t *testing.T) {
	got := appEnv([]string{"A=1"})
	want := []string{"A=1", defaultPath, "HOME=/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	got = appEnv([]string{"HOME=/root", "PATH=/x"})
	if !reflect.DeepEqual(got, []string{"HOME=/root", "PATH=/x"}) {
		t.Errorf("kept: got %v", got)
	}
}

func TestLookPath(t *testing.T) {
	exists := func(p string) bool { return p == "/usr/bin/server" || p == "/x/tool" }
	for _, tc := range []struct {
		argv0 string
		env   []string
		want  string
	}{
		{"/app", nil, "/app"},
		{"./rel", nil, "./rel"},
		{"server", nil, "/usr/bin/server"},
		{"tool", []string{"PATH=/y:/x"}, "/x/tool"},
	} {
		got, err := lookPath(tc.argv0, tc.env, exists)
		if err != nil || got != tc.want {
			t.Errorf("lookPath(%q) = %q, %v; want %q", tc.argv0, got, err, tc.want)
		}
	}
	if _, err := lookPath("missing", nil, exists); err == nil {
		t.Error("missing: no error")
	}
}

func TestNetFiles(t *testing.T) {
	c := &ipv4Config{IP: net.IP{10, 0, 2, 15}, DNS: []net.IP{{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}, {4, 4, 4, 4}}, Domain: "corp"}
	if got, want := resolvConf(c), "search corp\nnameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n"; got != want {
		t.Errorf("resolv.conf\n%s", got)
	}
	h := hostsFile("api", c)
	if !strings.HasPrefix(h, "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(h, "10.0.2.15\tapi\n") {
		t.Errorf("hosts\n%s", h)
	}
	if h := hostsFile("api", nil); !strings.HasSuffix(h, "127.0.1.1\tapi\n") {
		t.Errorf("hosts without address\n%s", h)
	}
	for in, want := range map[string]string{
		"api": "api", "My_App.v2": "my-app-v2", "--x--": "x", "日本": "",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := hostname(in); got != want {
			t.Errorf("hostname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCmdlineAndLogger(t *testing.T) {
	cl := "console=ttyS0 quiet unikfile.verbose rdinit=/init\n"
	if !cmdlineHas(cl, "unikfile.verbose") || cmdlineHas(cl, "verbose") || !cmdlineHas("unikfile.verbose=1", "unikfile.verbose") {
		t.Error("cmdlineHas")
	}
	var b bytes.Buffer
	l := &logger{w: &b}
	l.stepf("quiet %d", 1)
	l.errorf("bad %s\n", "thing")
	l.raw(guest.ReadyMarker)
	l.verbose = true
	l.stepf("step")
	want := "unikfile-init: error: bad thing\n\n" + guest.ReadyMarker + "\nunikfile-init: step\n"
	if b.String() != want {
		t.Errorf("log\n%q\nwant\n%q", b.String(), want)
	}
}

// The host's unikfile.ip (guest.IPCmdline) is read back as it was given;
// a malformed one is an error, and none is no answer.
func TestCmdlineIP(t *testing.T) {
	line := "console=ttyS0 quiet" + guest.IPCmdline(guest.QEMUUserNet) + " unikfile.verbose"
	c, ok, err := cmdlineIP(line)
	if err != nil || !ok {
		t.Fatalf("%q: ok=%v err=%v", line, ok, err)
	}
	if got := c.String(); got != "10.0.2.15/24 via the host, gateway 10.0.2.2, dns 10.0.2.3" {
		t.Errorf("%q gives %s", line, got)
	}
	if c, ok, err := cmdlineIP("x unikfile.ip=192.168.1.9/16"); err != nil || !ok || c.Gateway != nil || len(c.DNS) != 0 || c.IP.String() != "192.168.1.9" {
		t.Errorf("address only: %v %v %v", c, ok, err)
	}
	for _, bad := range []string{"unikfile.ip=10.0.2.15", "unikfile.ip=10.0.2.15/24,gw", "unikfile.ip=10.0.2.15/24,10.0.2.2,dns", "unikfile.ip="} {
		if _, ok, err := cmdlineIP(bad); !ok || err == nil || !strings.Contains(err.Error(), "unikfile.ip=") {
			t.Errorf("%q: ok=%v err=%v", bad, ok, err)
		}
	}
	// The first one counts: the image's own command line comes before
	// what the host adds, and dhcp keeps the image's settings.
	if _, ok, err := cmdlineIP("unikfile.ip=dhcp" + guest.IPCmdline(guest.QEMUUserNet)); ok || err != nil {
		t.Errorf("unikfile.ip=dhcp first: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := cmdlineIP("console=ttyS0 unikfile.ipv6=x"); ok {
		t.Error("another parameter read as unikfile.ip")
	}
}

// The emulated-CPU environment fills in what the app's own does not set.
func TestAddMissing(t *testing.T) {
	got := addMissing([]string{"A=1", "JDK_JAVA_OPTIONS=-Xmx64m"}, []string{"JDK_JAVA_OPTIONS=-XX:CompileThresholdScaling=100", "B=2"})
	if want := []string{"A=1", "JDK_JAVA_OPTIONS=-Xmx64m", "B=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

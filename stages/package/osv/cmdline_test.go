package osv

import (
	"strings"
	"testing"
)

func TestCmdline(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"static network, plain words",
			Command{Argv: []string{"/app/main", "-listen", ":8080"}, Net: QEMUUserNet},
			"--console=serial --rootfs=rofs --verbose --power-off-on-abort --ip=eth0,10.0.2.15,255.255.255.0 --defaultgw=10.0.2.2 --nameserver=10.0.2.3 /app/main -listen :8080"},
		{"DHCP, env and working directory",
			Command{Argv: []string{"/app/main"}, Env: []string{"A=1", "GREETING=hello world", `B=back\slash`}, Dir: "/app", Net: DHCP},
			`--console=serial --rootfs=rofs --verbose --power-off-on-abort --env=A=1 --env=GREETING=hello\ world --env=B=back\\slash --cwd=/app /app/main`},
		{"quoted arguments",
			Command{Argv: []string{"/bin/x", "two words", `say "hi"`, `a\b`, "", "x;y&z!", "tab\there", "line\nnext"}, Net: DHCP},
			`--console=serial --rootfs=rofs --verbose --power-off-on-abort /bin/x "two words" "say \"hi\"" "a\\b" "" "x;y&z!" "tab\there" "line\nnext"`},
		{"with the readiness helper",
			Command{Argv: []string{"/app/main", "-listen", ":8080"}, Net: DHCP, ReadyPorts: []int{8080, 9090}},
			"--console=serial --rootfs=rofs --verbose --power-off-on-abort /.unikfile/ready 8080 9090 &! /app/main -listen :8080"},
		{"extra kernel options",
			Command{Argv: []string{"/x"}, Net: DHCP, Options: []string{"--disable_rofs_cache"}},
			"--console=serial --rootfs=rofs --verbose --power-off-on-abort --disable_rofs_cache /x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Cmdline(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCmdlineErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"relative program", Command{Argv: []string{"main"}, Net: DHCP}, "absolute path"},
		{"no program", Command{Net: DHCP}, "absolute path"},
		{"dollar", Command{Argv: []string{"/x", "$HOME"}, Net: DHCP}, "cannot pass a literal $"},
		{"bad env", Command{Argv: []string{"/x"}, Env: []string{"NOVALUE"}, Net: DHCP}, "want KEY=value"},
		{"newline in env", Command{Argv: []string{"/x"}, Env: []string{"A=b\nc"}, Net: DHCP}, "newline"},
		{"no address", Command{Argv: []string{"/x"}, Net: Net{Gateway: "10.0.2.2"}}, "needs an address"},
		{"bad option", Command{Argv: []string{"/x"}, Net: DHCP, Options: []string{"verbose"}}, "single words starting with --"},
		{"too long", Command{Argv: []string{"/x", strings.Repeat("a", MaxCmdline)}, Net: DHCP}, "more than the 1024 it takes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Cmdline(tc.cmd)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReplaceNet(t *testing.T) {
	cmd := Command{Argv: []string{"/app/main", "--flag", "two words"}, Env: []string{"GREETING=hi there"}, Dir: "/app", Net: QEMUUserNet}
	static, err := Cmdline(cmd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := replaceNet(static, DHCP)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Net = DHCP
	want, _ := Cmdline(cmd)
	if got != want {
		t.Errorf("static to DHCP:\ngot  %s\nwant %s", got, want)
	}
	back, err := replaceNet(got, QEMUUserNet)
	if err != nil {
		t.Fatal(err)
	}
	if back != static {
		t.Errorf("DHCP to static:\ngot  %s\nwant %s", back, static)
	}
	opts, rest := splitOptions(static)
	if rest != `/app/main --flag "two words"` || opts[len(opts)-2] != `--env=GREETING=hi\ there` {
		t.Errorf("split: %q | %q", opts, rest)
	}
}

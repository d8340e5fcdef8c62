package qemu

import "testing"

func TestParseUsernet(t *testing.T) {
	// As QEMU 7.2 prints it, while one connection waits for the guest and
	// one was accepted.
	const table = `Hub -1 (n0):
  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
  TCP[SYN_SENT]      18       127.0.0.1 17081       10.0.2.15    81     0     0
  TCP[ESTABLISHED]   17       127.0.0.1 17090       10.0.2.15    80     0     0
  TCP[HOST_FORWARD]   9       127.0.0.1 17090       10.0.2.15    80     0     0
  TCP[HOST_FORWARD]   8       127.0.0.1 17081       10.0.2.15    81     0     0
  UDP[236 sec]       20       127.0.0.1 17555       10.0.2.15    53     0     0
`
	for _, c := range []struct {
		fw           Forward
		accepted, ok bool
	}{
		{Forward{Bind: "127.0.0.1", Host: 17090, Guest: 80}, true, true},
		{Forward{Bind: "127.0.0.1", Host: 17081, Guest: 81}, false, true},
		{Forward{Bind: "127.0.0.1", Host: 17099, Guest: 80}, false, false}, // only the listener
	} {
		if a, ok := parseUsernet(table, c.fw); a != c.accepted || ok != c.ok {
			t.Errorf("%+v: accepted %v ok %v, want %v %v", c.fw, a, ok, c.accepted, c.ok)
		}
	}
}

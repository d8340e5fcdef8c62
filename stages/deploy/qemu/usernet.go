package qemu

import (
	"context"
	"strconv"
	"strings"
)

// handshakeDone are the TCP states of QEMU's user network (`info
// usernet`) in which the guest has answered a connection's SYN: it
// accepted it, whatever happened next.
var handshakeDone = map[string]bool{
	"ESTABLISHED": true, "CLOSE_WAIT": true, "FIN_WAIT_1": true, "FIN_WAIT_2": true,
	"CLOSING": true, "LAST_ACK": true, "TIME_WAIT": true,
}

// guestAnswered reads QEMU's user network table (HMP `info usernet`)
// while a connection through forward f is open, and says whether the
// guest accepted it. While the guest has not answered (its network is not
// up yet), QEMU holds the host side open in SYN_SENT, so an open host
// connection alone proves nothing. known is false when the table cannot
// be read (the caller then goes by the open connection).
func guestAnswered(ctx context.Context, qmp string, f Forward) (accepted, known bool) {
	if qmp == "" {
		return false, false
	}
	out, err := hmp(ctx, qmp, "info usernet")
	if err != nil {
		return false, false
	}
	accepted, _ = parseUsernet(out, f)
	return accepted, true
}

// parseUsernet reads the table of `info usernet`:
//
//	Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
//	TCP[ESTABLISHED]   17       127.0.0.1 17090       10.0.2.15    80     0     0
//	TCP[HOST_FORWARD]   9       127.0.0.1 17090       10.0.2.15    80     0     0
//
// A forwarded connection is listed with the forward's host address and
// port as its source and the guest's address and port as its destination.
func parseUsernet(out string, f Forward) (accepted, ok bool) {
	for _, l := range strings.Split(out, "\n") {
		fields := strings.Fields(l)
		if len(fields) < 6 || !strings.HasPrefix(fields[0], "TCP[") {
			continue
		}
		st := strings.TrimSuffix(strings.TrimPrefix(fields[0], "TCP["), "]")
		if st == "HOST_FORWARD" {
			continue
		}
		src, err1 := strconv.Atoi(fields[3])
		dst, err2 := strconv.Atoi(fields[5])
		if err1 != nil || err2 != nil || src != f.Host || dst != f.Guest {
			continue
		}
		ok = true
		if handshakeDone[st] {
			return true, true
		}
	}
	return false, ok
}

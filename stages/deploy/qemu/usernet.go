package qemu

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// handshakeDone are the TCP states of QEMU's user network (`info
// usernet`) in which the guest has answered a connection's SYN: it
// accepted it, whatever happened next.
var handshakeDone = map[string]bool{
	"ESTABLISHED": true, "CLOSE_WAIT": true, "FIN_WAIT_1": true, "FIN_WAIT_2": true,
	"CLOSING": true, "LAST_ACK": true, "TIME_WAIT": true,
}

// guestAcceptWait bounds how long guestAccepts watches one probe
// connection for the guest's answer before it tries again with a new one.
const guestAcceptWait = 2 * time.Second

// usernetPoll is how often guestAccepts reads QEMU's user network table
// while it waits.
const usernetPoll = 20 * time.Millisecond

// guestAccepts says whether the guest has accepted a connection on every
// forwarded port, as QEMU sees it (pack.ConsoleProtocol.Accepts): it
// connects to the forward's host port and reads QEMU's user network table
// (HMP `info usernet`) while the connection is open. QEMU takes the host
// side at once and holds it open in SYN_SENT while the guest has not
// answered (its network is not up, or it is busy), so the host side alone
// proves nothing; the guest has accepted once the connection is in a state
// after its SYN-ACK (handshakeDone). A refused connection leaves the table.
func (b *booting) guestAccepts(ctx context.Context, fw []Forward) error {
	for _, f := range fw {
		if err := guestAccepted(ctx, b.cfg.QMP, f); err != nil {
			return err
		}
	}
	return nil
}

func guestAccepted(ctx context.Context, qmp string, f Forward) error {
	c, err := net.DialTimeout("tcp", dialAddr(f), portDialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(guestAcceptWait)
	seen := false
	for {
		out, err := hmp(ctx, qmp, "info usernet")
		if err != nil {
			return fmt.Errorf("cannot read QEMU's user network table to see whether the guest accepts on port %d: %w", f.Guest, err)
		}
		accepted, listed := parseUsernet(out, f)
		switch {
		case accepted:
			return nil
		case seen && !listed:
			return fmt.Errorf("the guest refused a connection on port %d (the app does not listen yet)", f.Guest)
		case time.Now().After(deadline):
			return fmt.Errorf("the guest has not answered a connection on port %d after %s (its network is not up, or it is busy)", f.Guest, guestAcceptWait)
		}
		seen = seen || listed
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(usernetPoll):
		}
	}
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

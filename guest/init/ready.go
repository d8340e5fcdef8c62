package main

import (
	"strconv"
	"strings"
)

// tcpListen is the state column of /proc/net/tcp for a listening socket.
const tcpListen = "0A"

// listeningPorts adds to ports the local port of every LISTEN socket in the
// text of /proc/net/tcp or /proc/net/tcp6:
//
//	sl  local_address rem_address   st ...
//	0: 00000000:1F90 00000000:0000 0A ...
//
// Malformed lines are skipped.
func listeningPorts(table string, ports map[int]bool) {
	for i, line := range strings.Split(table, "\n") {
		if i == 0 {
			continue // header
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != tcpListen {
			continue
		}
		_, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			continue
		}
		ports[int(n)] = true
	}
}

// allListening reports whether every port in want is in have.
func allListening(want []int, have map[int]bool) bool {
	for _, p := range want {
		if !have[p] {
			return false
		}
	}
	return true
}

// exitStatus is the status the init reports for the app: the exit code, or
// 128 plus the signal number when a signal killed it (as shells do).
func exitStatus(exited bool, code int, signaled bool, sig int) int {
	switch {
	case exited:
		return code
	case signaled:
		return 128 + sig
	}
	return 255
}

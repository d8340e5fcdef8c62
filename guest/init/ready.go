package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// tcpListen is the state column of /proc/net/tcp for a listening socket.
const tcpListen = "0A"

// listeningPorts adds to ports the local port of every LISTEN socket in the
// text of /proc/net/tcp or /proc/net/tcp6 that the host can reach, and to
// loopback the ports of sockets listening on a loopback address only:
//
//	sl  local_address rem_address   st ...
//	0: 00000000:1F90 00000000:0000 0A ...
//
// Malformed lines are skipped.
func listeningPorts(table string, ports, loopback map[int]bool) {
	for i, line := range strings.Split(table, "\n") {
		if i == 0 {
			continue // header
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != tcpListen {
			continue
		}
		addr, port, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			continue
		}
		if isLoopback(addr) {
			loopback[int(n)] = true
			continue
		}
		ports[int(n)] = true
	}
}

// isLoopback reports whether a /proc/net/tcp{,6} address (hex, in the
// kernel's byte order) is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104.
func isLoopback(addr string) bool {
	addr = strings.ToUpper(addr)
	switch len(addr) {
	case 8: // IPv4, little-endian: 127.0.0.1 is 0100007F
		return strings.HasSuffix(addr, "7F")
	case 32:
		if addr == "00000000000000000000000001000000" {
			return true // ::1
		}
		return strings.HasPrefix(addr, "0000000000000000FFFF0000") && strings.HasSuffix(addr, "7F")
	}
	return false
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

// portMismatch describes an app that listens, where the host can reach
// it, on ports the Unikfile does not declare while a declared one is not
// listening: "the app listens on 9090; the Unikfile declares 8080 ...".
// It is "" when every declared port listens or the app listens on nothing
// else (it may still be starting).
func portMismatch(want []int, have map[int]bool) string {
	if allListening(want, have) {
		return ""
	}
	declared := map[int]bool{}
	for _, p := range want {
		declared[p] = true
	}
	var other []int
	for p := range have {
		if !declared[p] {
			other = append(other, p)
		}
	}
	if len(other) == 0 {
		return ""
	}
	sort.Ints(other)
	var listening []int
	for p := range have {
		listening = append(listening, p)
	}
	sort.Ints(listening)
	wantSorted := append([]int(nil), want...)
	sort.Ints(wantSorted)
	return fmt.Sprintf("the app listens on %s; the Unikfile declares %s: set the app's ports to the ones it listens on (ports = [%s]), or make it listen on %s",
		portList(listening, ", "), portList(wantSorted, ", "), portList(listening, ", "), portList(missing(wantSorted, have), " and "))
}

// missing is the ports of want that are not in have.
func missing(want []int, have map[int]bool) []int {
	var out []int
	for _, p := range want {
		if !have[p] {
			out = append(out, p)
		}
	}
	return out
}

func portList(ports []int, sep string) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, sep)
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

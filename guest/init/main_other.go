//go:build !linux

package main

import (
	"fmt"
	"os"
)

// The init runs only as PID 1 of a Linux guest; this keeps `go vet ./...`
// and `go build ./...` working on other hosts.
func main() {
	fmt.Fprintln(os.Stderr, prefix+"error: the guest init runs only on Linux")
	os.Exit(1)
}

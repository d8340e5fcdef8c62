package main

import (
	"bytes"
	"path"
)

// A kernel module that drives PCI devices declares which ones in its
// .modinfo section as alias=pci:v<vendor>d<device>... glob patterns. The
// init loads such a module only when a present device's modalias matches,
// which saves loading the clouds' NIC drivers (a third of module loading
// time under emulation) where their hardware is absent.

// pciAliases returns the PCI alias patterns in a module file's bytes.
func pciAliases(module []byte) []string {
	const key = "\x00alias=pci:"
	var out []string
	for rest := module; ; {
		i := bytes.Index(rest, []byte(key))
		if i < 0 {
			return out
		}
		rest = rest[i+1:] // at "alias="
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return out
		}
		out = append(out, string(rest[len("alias="):end]))
		rest = rest[end:]
	}
}

// matchesDevice reports whether any alias pattern matches any device
// modalias. A malformed pattern counts as a match: when in doubt, load.
func matchesDevice(aliases, modaliases []string) bool {
	for _, a := range aliases {
		for _, m := range modaliases {
			ok, err := path.Match(a, m)
			if ok || err != nil {
				return true
			}
		}
	}
	return false
}

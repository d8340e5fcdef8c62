package kbuild

import "testing"

func TestVersionLess(t *testing.T) {
	for _, c := range [][2]string{{"6.1.192-2", "6.1.192-3"}, {"6.1.9-1", "6.1.10-1"}, {"6.1.192-3", "6.1.192-3+b1"}, {"6.1.99", "6.2.1"}} {
		if !versionLess(c[0], c[1]) || versionLess(c[1], c[0]) {
			t.Errorf("%s < %s does not hold", c[0], c[1])
		}
	}
}

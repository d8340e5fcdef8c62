package kbuild

import "strings"

// versionLess orders Debian package versions the way `sort -V` does:
// runs of digits compare as numbers, everything else byte by byte.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ra, rb := chunkLen(a), chunkLen(b)
		ca, cb := a[:ra], b[:rb]
		a, b = a[ra:], b[rb:]
		if ca == cb {
			continue
		}
		if digit(ca[0]) && digit(cb[0]) {
			na, nb := strings.TrimLeft(ca, "0"), strings.TrimLeft(cb, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			return na < nb || (na == nb && len(ca) < len(cb))
		}
		return ca < cb
	}
	return len(a) < len(b)
}

// chunkLen is the length of s's leading run of digits or of non-digits.
func chunkLen(s string) int {
	d := digit(s[0])
	i := 1
	for i < len(s) && digit(s[i]) == d {
		i++
	}
	return i
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

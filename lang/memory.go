package lang

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

const (
	minMemoryMiB = 64
	maxMemoryMiB = 1 << 20 // 1 TiB
)

// memoryUnits are the units a memory size may use, in MiB. "M" and "G"
// mean MiB and GiB: guest memory is always counted in powers of two.
var memoryUnits = map[string]float64{"MiB": 1, "M": 1, "GiB": 1024, "G": 1024}

// parseMemory parses a memory size such as "256MiB", "1GiB", "1.5G" or
// "512M" into MiB.
func parseMemory(s string) (int, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	f, err := strconv.ParseFloat(num, 64)
	if num == "" || err != nil {
		return 0, fmt.Errorf("%q is not a size: write a number and a unit, e.g. \"256MiB\" or \"1GiB\"", s)
	}
	mult, ok := memoryUnits[unit]
	if !ok {
		if unit == "" {
			return 0, fmt.Errorf("%q has no unit: write e.g. \"%sMiB\" or \"%sGiB\"", s, num, num)
		}
		return 0, fmt.Errorf("%q has an unknown unit %q: use MiB (or M) or GiB (or G)", s, unit)
	}
	mib := f * mult
	switch {
	case mib != math.Trunc(mib):
		return 0, fmt.Errorf("%q is not a whole number of MiB", s)
	case mib < minMemoryMiB:
		return 0, fmt.Errorf("%q is too small: an app needs at least %dMiB", s, minMemoryMiB)
	case mib > maxMemoryMiB:
		return 0, fmt.Errorf("%q is too large: at most %dGiB", s, maxMemoryMiB/1024)
	}
	return int(mib), nil
}

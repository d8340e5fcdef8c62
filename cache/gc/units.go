package gc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSize reads a size: a number of bytes with an optional unit, B, K,
// KB, KiB, M, MB, MiB, G, GB, GiB, T, TB, TiB (all powers of 1024, as du
// and BuildKit's --keep-storage count), or "off" (0).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (500MiB, 10GiB) or off", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "ib"), "b")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	if n*mult > 1<<62 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n * mult), nil
}

// ParseAge reads a duration as Go writes them (72h, 90m) or in days
// (30d), or "off" (0).
func ParseAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(t, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("age %q: want a duration (72h, 30d) or off", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, errors.New("age " + strconv.Quote(s) + ": want a duration (72h, 30d) or off")
	}
	return d, nil
}

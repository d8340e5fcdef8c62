package deploy

import "fmt"

// UploadProgress returns a function to call with the bytes of an upload of
// total bytes sent so far; it says "uploading image: N% (sent of total)"
// at every tenth, so a long upload shows it is moving.
func UploadProgress(total int64, say func(string, ...any)) func(sent int64) {
	next := int64(10)
	return func(sent int64) {
		if total <= 0 {
			return
		}
		pct := sent * 100 / total
		if pct >= next && pct < 100 {
			say("uploading image: %d%% (%s of %s)", pct, MiB(sent), MiB(total))
			next = pct/10*10 + 10
		}
	}
}

// MiB formats a byte count in MiB with one decimal.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

package gcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Labels unikfile puts on what it creates. GCE label keys and values are at
// most 63 lowercase letters, digits, dashes and underscores.
const (
	labelManaged  = "managed-by"
	managedValue  = "unikfile"
	labelInstance = "unikfile-instance" // the instance ID of unikfile's record
	labelProject  = "unikfile-project"  // projectKey: this host and Unikfile directory
	labelTarget   = "unikfile-target"
	labelApp      = "unikfile-app"
	labelImage    = "unikfile-image"  // on instances: the image they boot
	labelDigest   = "unikfile-digest" // on images: the archive's sha256 (63 of its 64 digits)
	labelBoot     = "unikfile-boot"
)

// instanceName is the GCE name of the instance with unikfile ID id (the
// app's name, a dash, random hex digits): "uf-" and the ID made a valid
// name, the random part kept whole. Its firewall rule and network tag are
// named the same.
func instanceName(id string) string {
	app, suffix := id, ""
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		app, suffix = id[:i], id[i+1:]
	}
	suffix = nameChars(suffix)
	app = nameChars(app)
	if room := 63 - len("uf--") - len(suffix); len(app) > room {
		app = strings.TrimRight(app[:room], "-")
	}
	if app == "" {
		return "uf-" + suffix
	}
	return "uf-" + app + "-" + suffix
}

// imageName is the name of the image of an archive with sha256 digest:
// one image per archive, found again by name.
func imageName(digest string) string {
	return "unikfile-" + truncate(strings.ToLower(digest), 63-len("unikfile-"))
}

// objectName is where the archive of image is staged in the bucket.
func objectName(image string) string { return "unikfile/" + image + ".tar.gz" }

// projectKey identifies a Unikfile directory on a host in labels, so that
// two hosts (or two checkouts) deploying to one GCP project keep apart.
func projectKey(host, dir string) string {
	sum := sha256.Sum256([]byte(host + "\x00" + dir))
	return hex.EncodeToString(sum[:8])
}

// labelValue makes s a valid label value.
func labelValue(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return truncate(b.String(), 63)
}

// nameChars lowercases s and turns what a GCE name may not hold into
// dashes.
func nameChars(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// labelFilter is a list filter matching every label of m.
func labelFilter(m map[string]string, keys ...string) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("labels.%s = %q", k, m[k]))
	}
	return strings.Join(parts, " AND ")
}

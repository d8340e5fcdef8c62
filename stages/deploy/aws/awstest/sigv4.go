package awstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature Version 4, verified from its specification: the canonical
// request, the string to sign, the derived key and the signature, computed
// here from the request as it arrived and compared with the one it carries.

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	amzDateLayout = "20060102T150405Z"
	// maxSkew is how far a request's time may be from the server's (AWS
	// allows 15 minutes).
	maxSkew = 15 * time.Minute
	// unsignedPayload stands for a body left out of the signature (EBS block
	// data, protected by its own checksum instead).
	unsignedPayload = "UNSIGNED-PAYLOAD"
)

// authError is a rejected signature: the service's code for it and why.
type authError struct {
	// kind is one of: credentials (unknown key), signature (malformed or
	// wrong), region (scoped to another region), expired.
	kind string
	msg  string
}

func (e *authError) Error() string { return e.msg }

// verifySigV4 checks r's Authorization header against the server's
// credentials, for service in region. body is the request body as read;
// allowUnsigned says whether the payload may be left unsigned.
func verifySigV4(r *http.Request, body []byte, accessKey, secretKey, region, service string, allowUnsigned bool, now time.Time) *authError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return &authError{"signature", "Request is missing Authentication Token"}
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigAlgorithm {
		return &authError{"signature", fmt.Sprintf("Unsupported signature algorithm %q", alg)}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return &authError{"signature", fmt.Sprintf("Authorization header part %q is not key=value", part)}
		}
		fields[k] = v
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return &authError{"signature", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'"}
	}
	if len(sig) != 64 || strings.Trim(sig, "0123456789abcdef") != "" {
		return &authError{"signature", "Signature is not 64 lowercase hex digits"}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return &authError{"signature", fmt.Sprintf("Credential %q is not KEY/DATE/REGION/SERVICE/aws4_request", cred)}
	}
	key, date, credRegion, credService := scope[0], scope[1], scope[2], scope[3]
	if key != accessKey {
		return &authError{"credentials", "The security token included in the request is invalid."}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateLayout, amzDate)
	if err != nil {
		return &authError{"signature", fmt.Sprintf("X-Amz-Date %q is not of the form YYYYMMDDTHHMMSSZ", amzDate)}
	}
	if date != amzDate[:8] {
		return &authError{"signature", fmt.Sprintf("Credential date %s does not match X-Amz-Date %s", date, amzDate)}
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return &authError{"expired", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)", amzDate, now.UTC().Add(-maxSkew).Format(amzDateLayout), now.UTC().Format(amzDateLayout))}
	}
	if credService != service {
		return &authError{"signature", fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service)}
	}
	if credRegion != region {
		return &authError{"region", fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", credRegion)}
	}
	headers := strings.Split(signed, ";")
	if !slices.IsSorted(headers) || !slices.Contains(headers, "host") || !slices.Contains(headers, "x-amz-date") {
		return &authError{"signature", "SignedHeaders must be sorted and include host and x-amz-date"}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	sum := sha256.Sum256(body)
	switch {
	case payload == unsignedPayload && !allowUnsigned:
		return &authError{"signature", "UNSIGNED-PAYLOAD is not accepted for this operation"}
	case payload == "":
		payload = hex.EncodeToString(sum[:])
	case payload != unsignedPayload && payload != hex.EncodeToString(sum[:]):
		return &authError{"signature", "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	canon, err := canonicalRequest(r, headers, payload)
	if err != nil {
		return &authError{"signature", err.Error()}
	}
	crHash := sha256.Sum256([]byte(canon))
	toSign := strings.Join([]string{sigAlgorithm, amzDate, strings.Join(scope[1:], "/"), hex.EncodeToString(crHash[:])}, "\n")
	k := hmacSHA256([]byte("AWS4"+secretKey), date)
	k = hmacSHA256(k, credRegion)
	k = hmacSHA256(k, credService)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return &authError{"signature", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest is the request in SigV4's canonical form, over the
// signed headers.
func canonicalRequest(r *http.Request, signed []string, payload string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	// Services other than S3 encode each path segment once more.
	segs := strings.Split(r.URL.EscapedPath(), "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	path := strings.Join(segs, "/")
	if path == "" {
		path = "/"
	}
	b.WriteString(path + "\n")
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", fmt.Errorf("query string: %v", err)
	}
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	slices.Sort(pairs)
	b.WriteString(strings.Join(pairs, "&") + "\n")
	for _, h := range signed {
		var vals []string
		switch h {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = r.Header.Values(h)
			if len(vals) == 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			vals = r.Header.Values(h)
		}
		if len(vals) == 0 {
			return "", fmt.Errorf("signed header %q is not in the request", h)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(h + ":" + strings.Join(vals, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + payload)
	return b.String(), nil
}

// uriEncode percent-encodes everything but RFC 3986's unreserved
// characters, with upper-case hex digits.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

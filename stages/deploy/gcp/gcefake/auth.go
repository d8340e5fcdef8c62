package gcefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"time"
)

// Key is a service account key the server accepts: the tests write it as
// a key file (JSON) for Application Default Credentials, and the client
// libraries exchange a JWT signed with it for an access token at the
// server's token endpoint, as at Google's.
type Key struct {
	Email   string
	Project string
	ID      string
	private *rsa.PrivateKey
}

// NewKey makes a key for a service account of project.
func NewKey(project, account string) *Key {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	return &Key{Email: account + "@" + project + ".iam.gserviceaccount.com", Project: project, ID: hex.EncodeToString(id[:]), private: k}
}

// JSON is the key file, with its token endpoint at tokenURI.
func (k *Key) JSON(tokenURI string) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(k.private)
	b, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": k.Project, "private_key_id": k.ID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": k.Email, "client_id": "1", "token_uri": tokenURI,
		"auth_uri": "https://accounts.google.com/o/oauth2/auth",
	}, "", "  ")
	return b
}

// TokenURI is the server's token endpoint.
func (s *Server) TokenURI() string { return s.URL + "/token" }

// serveToken is the OAuth 2.0 JWT bearer grant (RFC 7523) as Google's
// token endpoint serves it for service accounts.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	fail := func(why string) {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": why})
	}
	if r.Method != http.MethodPost {
		fail("use POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(err.Error())
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		fail("unsupported grant_type " + r.PostForm.Get("grant_type"))
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		fail("the assertion is not a JWT")
		return
	}
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss, Aud, Scope string
		Exp, Iat        int64
	}
	if decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil {
		fail("the assertion cannot be decoded")
		return
	}
	var key *Key
	for _, k := range s.o.Keys {
		if k.Email == claims.Iss {
			key = k
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	now := time.Now().Unix()
	switch {
	case key == nil:
		fail("Invalid JWT Signature: unknown service account " + claims.Iss)
	case hdr.Alg != "RS256" || hdr.Kid != key.ID:
		fail("Invalid JWT: alg or key id")
	case err != nil:
		fail("Invalid JWT Signature")
	case claims.Aud != s.TokenURI():
		fail("Invalid JWT: audience " + claims.Aud)
	case claims.Exp < now || claims.Iat > now+300:
		fail("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
	case claims.Scope == "":
		fail("Invalid JWT: no scope")
	default:
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(&key.private.PublicKey, crypto.SHA256, sum[:], sig) != nil {
			fail("Invalid JWT Signature.")
			return
		}
		var t [24]byte
		_, _ = rand.Read(t[:])
		token := "ya29.fake-" + hex.EncodeToString(t[:])
		s.mu.Lock()
		s.tokens[token] = time.Now().Add(time.Hour)
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
	}
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Authorized says r carries an access token the server issued (always
// true when the server has no keys).
func (s *Server) Authorized(r *http.Request) bool {
	if len(s.o.Keys) == 0 {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, known := s.tokens[tok]
	return ok && known && time.Now().Before(exp)
}

func (s *Server) authorize(r *http.Request) *apiError {
	if s.Authorized(r) {
		return nil
	}
	e := newError(401, "required", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
	e.Errors[0].Domain = "global"
	return e
}

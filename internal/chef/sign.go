package chef

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Signing protocol versions (mixlib-authentication's X-Ops-Sign).
const (
	// Sign13 is RSA-SHA256 over a canonical request that includes the
	// X-Ops-Sign and API version headers; preferred.
	Sign13 = "1.3"
	// Sign10 is RSA "private encrypt" (PKCS#1 v1.5 padding, no DigestInfo)
	// over a SHA-1 canonical request: what every Chef server accepts.
	Sign10 = "1.0"
)

// serverAPIVersion is the X-Ops-Server-API-Version Chef's registration
// code sends.
const serverAPIVersion = "0"

// chefVersion is sent as X-Chef-Version: servers reject requests without it.
const chefVersion = "18.0.0"

// Signer signs requests as one Chef client (the validator, then the node).
type Signer struct {
	UserID  string
	Key     *rsa.PrivateKey
	Version string // Sign13 or Sign10
}

var slashesRE = regexp.MustCompile(`/+`)

// canonicalPath is the path as mixlib-authentication hashes it: runs of
// slashes collapsed, a trailing slash dropped, never the query.
func canonicalPath(p string) string {
	p = slashesRE.ReplaceAllString(p, "/")
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Headers returns the authentication headers for one request.
func (s Signer) Headers(method, path string, body []byte, now time.Time) (http.Header, error) {
	method = strings.ToUpper(method)
	ts := now.UTC().Format("2006-01-02T15:04:05Z")
	path = canonicalPath(path)
	h := http.Header{}
	var sig []byte
	var err error
	switch s.Version {
	case Sign10:
		sum := sha1.Sum(body)
		hp := sha1.Sum([]byte(path))
		h.Set("X-Ops-Content-Hash", b64(sum[:]))
		h.Set("X-Ops-Sign", "algorithm=sha1;version=1.0;")
		canon := "Method:" + method + "\nHashed Path:" + b64(hp[:]) +
			"\nX-Ops-Content-Hash:" + b64(sum[:]) + "\nX-Ops-Timestamp:" + ts + "\nX-Ops-UserId:" + s.UserID
		// hash 0: the canonical text itself is padded and signed, as
		// OpenSSL's RSA_private_encrypt does for mixlib-authentication.
		sig, err = rsa.SignPKCS1v15(nil, s.Key, 0, []byte(canon))
	case Sign13:
		sum := sha256.Sum256(body)
		h.Set("X-Ops-Content-Hash", b64(sum[:]))
		h.Set("X-Ops-Sign", "algorithm=sha256;version=1.3;")
		canon := "Method:" + method + "\nPath:" + path + "\nX-Ops-Content-Hash:" + b64(sum[:]) +
			"\nX-Ops-Sign:version=1.3\nX-Ops-Timestamp:" + ts + "\nX-Ops-UserId:" + s.UserID +
			"\nX-Ops-Server-API-Version:" + serverAPIVersion
		d := sha256.Sum256([]byte(canon))
		sig, err = rsa.SignPKCS1v15(nil, s.Key, crypto.SHA256, d[:])
	default:
		return nil, fmt.Errorf("chef: unknown signing version %q", s.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("chef: sign request as %s (X-Ops-Sign %s): %w", s.UserID, s.Version, err)
	}
	h.Set("X-Ops-Userid", s.UserID)
	h.Set("X-Ops-Timestamp", ts)
	h.Set("X-Ops-Server-API-Version", serverAPIVersion)
	h.Set("X-Chef-Version", chefVersion)
	enc := b64(sig)
	for i := 0; len(enc) > 0; i++ {
		n := min(60, len(enc))
		h.Set("X-Ops-Authorization-"+strconv.Itoa(i+1), enc[:n])
		enc = enc[n:]
	}
	return h, nil
}

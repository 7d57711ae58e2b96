package chef

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestCanonicalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "//": "/", "/clients/": "/clients", "//organizations//acme///clients": "/organizations/acme/clients", "/nodes/i-1": "/nodes/i-1",
	} {
		if got := canonicalPath(in); got != want {
			t.Errorf("canonicalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// signature joins the X-Ops-Authorization-N headers back.
func signature(t *testing.T, h map[string][]string) []byte {
	t.Helper()
	var enc strings.Builder
	for i := 1; ; i++ {
		v := h["X-Ops-Authorization-"+itoa(i)]
		if len(v) == 0 {
			break
		}
		if len(v[0]) > 60 {
			t.Errorf("X-Ops-Authorization-%d is %d characters, want at most 60", i, len(v[0]))
		}
		enc.WriteString(v[0])
	}
	sig, err := base64.StdEncoding.DecodeString(enc.String())
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// TestSignVerifies checks each version's signature with the public key
// over the canonical text the protocol defines.
func TestSignVerifies(t *testing.T) {
	key := testKey(t)
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.FixedZone("x", 3600))
	body := []byte(`{"name":"i-0abc","admin":false}`)
	ts := "2026-12-02T17:00:00Z"
	b := func(x []byte) string { return base64.StdEncoding.EncodeToString(x) }
	bodySHA1, bodySHA256, pathSHA1 := sha1.Sum(body), sha256.Sum256(body), sha1.Sum([]byte("/organizations/acme/clients"))

	h, err := Signer{UserID: "acme-validator", Key: key, Version: Sign13}.Headers("post", "/organizations/acme//clients/", body, now)
	if err != nil {
		t.Fatal(err)
	}
	canon := "Method:POST\nPath:/organizations/acme/clients\nX-Ops-Content-Hash:" + b(bodySHA256[:]) +
		"\nX-Ops-Sign:version=1.3\nX-Ops-Timestamp:" + ts + "\nX-Ops-UserId:acme-validator\nX-Ops-Server-API-Version:0"
	d := sha256.Sum256([]byte(canon))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], signature(t, h)); err != nil {
		t.Errorf("1.3 signature does not verify: %v", err)
	}
	for k, want := range map[string]string{"X-Ops-Sign": "algorithm=sha256;version=1.3;", "X-Ops-Timestamp": ts,
		"X-Ops-Userid": "acme-validator", "X-Ops-Content-Hash": b(bodySHA256[:]), "X-Ops-Server-Api-Version": "0"} {
		if got := h.Get(k); got != want {
			t.Errorf("1.3 %s = %q, want %q", k, got, want)
		}
	}

	h, err = Signer{UserID: "acme-validator", Key: key, Version: Sign10}.Headers("POST", "/organizations/acme/clients", body, now)
	if err != nil {
		t.Fatal(err)
	}
	canon = "Method:POST\nHashed Path:" + b(pathSHA1[:]) + "\nX-Ops-Content-Hash:" + b(bodySHA1[:]) +
		"\nX-Ops-Timestamp:" + ts + "\nX-Ops-UserId:acme-validator"
	// RSA public operation: the block must be 00 01 FF… 00 canon.
	m := new(big.Int).Exp(new(big.Int).SetBytes(signature(t, h)), big.NewInt(int64(key.E)), key.N).Bytes()
	if i := strings.Index(string(m), "\x00"); i < 0 || m[0] != 1 || string(m[i+1:]) != canon {
		t.Errorf("1.0 signature does not decrypt to the canonical request")
	}
	if got := h.Get("X-Ops-Sign"); got != "algorithm=sha1;version=1.0;" {
		t.Errorf("1.0 X-Ops-Sign = %q", got)
	}
	if _, err := (Signer{Key: key, Version: "1.2"}).Headers("GET", "/", nil, now); err == nil {
		t.Error("version 1.2 signed")
	}
}

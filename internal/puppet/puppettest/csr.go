// Package puppettest makes CSRs shaped as Puppet's agent makes them
// (a challengePassword attribute, pp_* extension requests as UTF8Strings),
// for the autosign policy's tests.
package puppettest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"sort"
)

// CSR is what goes into a test CSR.
type CSR struct {
	CommonName string
	Password   string // "" for none
	// Extensions by OID (1.3.6.1.4.1.34380.1.1.18 is pp_region).
	Extensions map[string]string
	// PasswordTag is the ASN.1 string type of the password (default UTF8String).
	PasswordTag int
}

// PEM returns the CSR, signed with a fresh P-256 key.
func (c CSR) PEM() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: c.CommonName}}
	oids := make([]string, 0, len(c.Extensions))
	for o := range c.Extensions {
		oids = append(oids, o)
	}
	sort.Strings(oids)
	for _, o := range oids {
		id, err := parseOID(o)
		if err != nil {
			return nil, err
		}
		v, err := asn1.MarshalWithParams(c.Extensions[o], "utf8")
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: id, Value: v})
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	if c.Password == "" {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
	}
	// Go cannot write a challengePassword: add it to the request info
	// and sign that again.
	var req struct {
		TBS    asn1.RawValue
		SigAlg pkix.AlgorithmIdentifier
		Sig    asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &req); err != nil {
		return nil, err
	}
	var tbs struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}
	if _, err := asn1.Unmarshal(req.TBS.FullBytes, &tbs); err != nil {
		return nil, err
	}
	tag := c.PasswordTag
	if tag == 0 {
		tag = asn1.TagUTF8String
	}
	val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(c.Password)})
	if err != nil {
		return nil, err
	}
	attr, err := asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}, []asn1.RawValue{{FullBytes: val}}})
	if err != nil {
		return nil, err
	}
	tbs.Attributes = append(tbs.Attributes, asn1.RawValue{FullBytes: attr})
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(tbsDER)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, err
	}
	req.TBS = asn1.RawValue{FullBytes: tbsDER}
	req.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	out, err := asn1.Marshal(req)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: out}), nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var id asn1.ObjectIdentifier
	n := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			id = append(id, n)
			n = 0
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return nil, asn1.StructuralError{Msg: "bad OID " + s}
		}
		n = n*10 + int(s[i]-'0')
	}
	return id, nil
}

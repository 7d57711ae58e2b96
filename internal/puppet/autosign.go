package puppet

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/config"
)

// The autosign policy: puppetserver runs an executable named by
// `autosign = …` in its [server] section with the certname as argv[1] and
// the CSR's PEM on stdin; exit 0 signs, anything else leaves the CSR
// pending. The node proves itself with the challengePassword it put in
// its CSR (csr_attributes.yaml); the EC2 facts in the CSR are the node's
// own claims, so the allow-lists narrow who may enrol but do not prove
// anything on their own.

// DefaultPolicyFile is where `bootstrap autosign` reads its policy.
const DefaultPolicyFile = "/etc/bootstrap/autosign.yaml"

// Limits on the inputs.
const (
	MaxCSR        = 64 << 10
	maxPolicyFile = 64 << 10
)

// OIDs Puppet puts in CSRs.
var (
	oidChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}
	oidPuppetRegistered  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 34380, 1, 1}
	// OIDAccount is bootstrap's extension for the AWS account id, in
	// Puppet's private arc (ppPrivCertExt 1.3.6.1.4.1.34380.1.2).
	OIDAccount = "1.3.6.1.4.1.34380.1.2.1"
)

// Policy is what autosign checks.
type Policy struct {
	// Password is the shared challenge password (from password_file).
	Password string `yaml:"-"`
	// PasswordFile holds the password, one line; it must not be readable
	// by others.
	PasswordFile string `yaml:"password_file"`
	// RequireEC2 wants pp_instance_id and pp_region in EC2's shapes.
	RequireEC2 bool `yaml:"require_ec2"`
	// Regions and Accounts, when set, are the only ones allowed.
	Regions  []string `yaml:"regions"`
	Accounts []string `yaml:"accounts"`
}

// LoadPolicy reads a policy file and its password file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := readBounded(path, maxPolicyFile)
	if err != nil {
		return nil, err
	}
	var p Policy
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if p.PasswordFile == "" {
		return nil, fmt.Errorf("%s: password_file is required: the file with the challenge password the nodes put in their CSRs", path)
	}
	fi, err := os.Stat(p.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("%s: password_file: %w", path, err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s: password_file %s is readable or writable by others (mode %04o); chmod 0640 it", path, p.PasswordFile, fi.Mode().Perm())
	}
	pw, err := readBounded(p.PasswordFile, maxPassword)
	if err != nil {
		return nil, err
	}
	p.Password = strings.TrimRight(string(pw), "\r\n")
	if p.Password == "" {
		return nil, fmt.Errorf("%s: password_file %s is empty", path, p.PasswordFile)
	}
	for _, r := range p.Regions {
		if !regionRE.MatchString(r) {
			return nil, fmt.Errorf("%s: regions: %q is not an AWS region name", path, r)
		}
	}
	for _, a := range p.Accounts {
		if !accountRE.MatchString(a) {
			return nil, fmt.Errorf("%s: accounts: %q is not a 12-digit AWS account id", path, a)
		}
	}
	return &p, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, limit+1)
	n, err := f.Read(buf)
	for err == nil && n <= int(limit) {
		var m int
		m, err = f.Read(buf[n:])
		n += m
	}
	if n > int(limit) {
		return nil, fmt.Errorf("%s: over %d bytes", path, limit)
	}
	return buf[:n], nil
}

var (
	instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	regionRE     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRE    = regexp.MustCompile(`^[0-9]{12}$`)
)

// CSRInfo is what autosign reads from a CSR.
type CSRInfo struct {
	CommonName string
	// Password is the challengePassword attribute ("" when absent).
	Password string
	// Extensions are the extension requests by short name (pp_region) or
	// OID for those without one.
	Extensions map[string]string
}

// ParseCSR reads a PEM CSR as Puppet makes it, checking its signature.
func ParseCSR(pemData []byte) (*CSRInfo, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("stdin holds no PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the CSR does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the CSR's signature does not verify: %v", err)
	}
	info := &CSRInfo{CommonName: csr.Subject.CommonName, Extensions: map[string]string{}}
	short := map[string]string{}
	for name, n := range config.PuppetExtensions {
		short[append(slices.Clone(oidPuppetRegistered), n).String()] = name
	}
	for _, e := range csr.Extensions {
		v, ok := asn1String(e.Value)
		if !ok {
			continue // not one of Puppet's string extensions
		}
		key := e.Id.String()
		if s, ok := short[key]; ok {
			key = s
		}
		info.Extensions[key] = v
	}
	// Go keeps only attributes shaped like extension requests; the
	// challengePassword (a SET of one string) is read from the raw CSR.
	var tbs struct {
		Raw        asn1.RawContent
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}
	if _, err := asn1.Unmarshal(csr.RawTBSCertificateRequest, &tbs); err != nil {
		return nil, fmt.Errorf("the CSR's attributes do not parse: %v", err)
	}
	for _, raw := range tbs.Attributes {
		var attr struct {
			Type   asn1.ObjectIdentifier
			Values []asn1.RawValue `asn1:"set"`
		}
		if _, err := asn1.Unmarshal(raw.FullBytes, &attr); err != nil || !attr.Type.Equal(oidChallengePassword) {
			continue
		}
		if len(attr.Values) != 1 {
			return nil, errors.New("the CSR's challengePassword attribute has more than one value")
		}
		pw, ok := rawString(attr.Values[0])
		if !ok {
			return nil, errors.New("the CSR's challengePassword is not a string")
		}
		info.Password = pw
	}
	return info, nil
}

func asn1String(der []byte) (string, bool) {
	var rv asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &rv); err != nil || len(rest) > 0 {
		return "", false
	}
	return rawString(rv)
}

// rawString accepts the string types OpenSSL writes: UTF8String,
// PrintableString, IA5String.
func rawString(rv asn1.RawValue) (string, bool) {
	if rv.Class != asn1.ClassUniversal {
		return "", false
	}
	switch rv.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String:
		if !utf8.Valid(rv.Bytes) {
			return "", false
		}
		return string(rv.Bytes), true
	}
	return "", false
}

// Decide says whether to sign certname's CSR: "" signs, else the reason it
// is refused. The reason never holds the password, given or expected.
func (p *Policy) Decide(certname string, pemData []byte) string {
	info, err := ParseCSR(pemData)
	if err != nil {
		return err.Error()
	}
	if info.CommonName != certname {
		return fmt.Sprintf("the CSR is for CN %q, not for the certname %q puppetserver named", info.CommonName, certname)
	}
	if info.Password == "" {
		return "the CSR has no challengePassword (csr_attributes.yaml custom_attributes 1.2.840.113549.1.9.7)"
	}
	// Digests first: equal lengths, so the compare's time says nothing
	// about the password's length either.
	got, want := sha256.Sum256([]byte(info.Password)), sha256.Sum256([]byte(p.Password))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return "the challengePassword does not match"
	}
	id, region := info.Extensions["pp_instance_id"], info.Extensions["pp_region"]
	if p.RequireEC2 {
		if !instanceIDRE.MatchString(id) {
			return fmt.Sprintf("pp_instance_id %q is not an EC2 instance id (i-…)", short(id))
		}
		if !regionRE.MatchString(region) {
			return fmt.Sprintf("pp_region %q is not an AWS region", short(region))
		}
	}
	if len(p.Regions) > 0 && !slices.Contains(p.Regions, region) {
		return fmt.Sprintf("pp_region %q is not in the allowed regions %s", short(region), strings.Join(p.Regions, ", "))
	}
	if len(p.Accounts) > 0 {
		acct := info.Extensions[OIDAccount]
		if !slices.Contains(p.Accounts, acct) {
			return fmt.Sprintf("the account %q (extension %s) is not in the allowed accounts", short(acct), OIDAccount)
		}
	}
	return ""
}

func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

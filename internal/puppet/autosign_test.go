package puppet

import (
	"encoding/asn1"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/puppet/puppettest"
)

const (
	oidInstanceID = "1.3.6.1.4.1.34380.1.1.2"
	oidRegion     = "1.3.6.1.4.1.34380.1.1.18"
)

func TestDecide(t *testing.T) {
	const pw = "s3cret-Challenge!"
	ec2 := map[string]string{oidInstanceID: "i-0123456789abcdef0", oidRegion: "eu-west-1", OIDAccount: "123456789012"}
	strict := &Policy{Password: pw, RequireEC2: true, Regions: []string{"eu-west-1"}, Accounts: []string{"123456789012"}}
	tests := []struct {
		name     string
		policy   *Policy
		certname string
		csr      puppettest.CSR
		want     string // "" signs
	}{
		{"right password, EC2 facts allowed", strict, "i-0123456789abcdef0", puppettest.CSR{CommonName: "i-0123456789abcdef0", Password: pw, Extensions: ec2}, ""},
		{"a PrintableString password", &Policy{Password: "abc"}, "n1", puppettest.CSR{CommonName: "n1", Password: "abc", PasswordTag: asn1.TagPrintableString}, ""},
		{"wrong password", strict, "i-0123456789abcdef0", puppettest.CSR{CommonName: "i-0123456789abcdef0", Password: "guess", Extensions: ec2}, "the challengePassword does not match"},
		{"a prefix of the password", strict, "i-0123456789abcdef0", puppettest.CSR{CommonName: "i-0123456789abcdef0", Password: pw[:5], Extensions: ec2}, "the challengePassword does not match"},
		{"no password", strict, "n1", puppettest.CSR{CommonName: "n1"}, "the CSR has no challengePassword"},
		{"certname is not the CN", strict, "other", puppettest.CSR{CommonName: "n1", Password: pw}, `the CSR is for CN "n1", not for the certname "other"`},
		{"not an instance id", strict, "n1", puppettest.CSR{CommonName: "n1", Password: pw, Extensions: map[string]string{oidInstanceID: "web01", oidRegion: "eu-west-1"}}, `pp_instance_id "web01" is not an EC2 instance id`},
		{"a region not allowed", strict, "n1", puppettest.CSR{CommonName: "n1", Password: pw, Extensions: map[string]string{oidInstanceID: "i-01234567", oidRegion: "us-east-1", OIDAccount: "123456789012"}}, `pp_region "us-east-1" is not in the allowed regions eu-west-1`},
		{"an account not allowed", strict, "n1", puppettest.CSR{CommonName: "n1", Password: pw, Extensions: map[string]string{oidInstanceID: "i-01234567", oidRegion: "eu-west-1", OIDAccount: "999999999999"}}, `the account "999999999999" (extension 1.3.6.1.4.1.34380.1.2.1) is not in the allowed accounts`},
		{"no account", strict, "n1", puppettest.CSR{CommonName: "n1", Password: pw, Extensions: map[string]string{oidInstanceID: "i-01234567", oidRegion: "eu-west-1"}}, `the account "" (extension`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.csr.PEM()
			if err != nil {
				t.Fatal(err)
			}
			got := tt.policy.Decide(tt.certname, data)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("Decide = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, pw) || tt.csr.Password != "" && strings.Contains(got, tt.csr.Password) {
				t.Errorf("the reason shows a password: %q", got)
			}
		})
	}
}

func TestParseCSRReadsPuppetsNames(t *testing.T) {
	data, err := puppettest.CSR{CommonName: "n1", Password: "p", Extensions: map[string]string{oidRegion: "eu-west-1", "1.3.6.1.4.1.34380.1.2.7": "x"}}.PEM()
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseCSR(data)
	if err != nil {
		t.Fatal(err)
	}
	if info.Password != "p" || info.Extensions["pp_region"] != "eu-west-1" || info.Extensions["1.3.6.1.4.1.34380.1.2.7"] != "x" {
		t.Errorf("parsed %+v", info)
	}
}

func TestDecideRefusesBrokenCSRs(t *testing.T) {
	p := &Policy{Password: "p"}
	good, err := puppettest.CSR{CommonName: "n1", Password: "p"}.PEM()
	if err != nil {
		t.Fatal(err)
	}
	// A byte of the request info changed: the signature no longer holds.
	block := strings.Split(string(good), "\n")
	b := []byte(block[2])
	b[10] ^= 1
	block[2] = string(b)
	tampered := strings.Join(block, "\n")
	for name, in := range map[string]string{
		"empty":    "",
		"not PEM":  "hello",
		"a cert":   "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"tampered": tampered,
	} {
		if got := p.Decide("n1", []byte(in)); got == "" {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("hunter2\n"), 0o640)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	p, err := LoadPolicy(write("ok.yaml", "password_file: "+pwFile+"\nrequire_ec2: true\nregions: [eu-west-1]\n"))
	if err != nil || p.Password != "hunter2" || !p.RequireEC2 {
		t.Fatalf("LoadPolicy = %+v, %v", p, err)
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("x"), 0o644)
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key":        {"password_file: " + pwFile + "\npasword: x\n", "field pasword not found"},
		"no password file":   {"regions: [eu-west-1]\n", "password_file is required"},
		"world-readable":     {"password_file: " + open + "\n", "readable or writable by others"},
		"bad region":         {"password_file: " + pwFile + "\nregions: [Europe]\n", `"Europe" is not an AWS region`},
		"bad account":        {"password_file: " + pwFile + "\naccounts: ['12']\n", `"12" is not a 12-digit`},
		"missing password f": {"password_file: /nonexistent\n", "no such file"},
	} {
		_, err := LoadPolicy(write(strings.ReplaceAll(name, " ", "-")+".yaml", tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

// TestDecidePuppetsOwnCSR reads a CSR made by Puppet 7's own code
// (Puppet::SSL::CertificateRequest#generate, RSA, testdata/puppet-csr.pem):
// its challengePassword and extensions, as the agent sends them.
func TestDecidePuppetsOwnCSR(t *testing.T) {
	data, err := os.ReadFile("testdata/puppet-csr.pem")
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Password: "fixture-password", RequireEC2: true, Regions: []string{"eu-west-1"}, Accounts: []string{"123456789012"}}
	if got := p.Decide("i-0123456789abcdef0", data); got != "" {
		t.Errorf("refused: %s", got)
	}
	p.Password = "fixture-passworD"
	if got := p.Decide("i-0123456789abcdef0", data); got != "the challengePassword does not match" {
		t.Errorf("Decide = %q", got)
	}
	info, _ := ParseCSR(data)
	if info.Extensions["pp_image_name"] != "ami-0abc1234" || info.Extensions["pp_instance_id"] != "i-0123456789abcdef0" {
		t.Errorf("extensions %v", info.Extensions)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/puppet/puppettest"
)

func TestAutosign(t *testing.T) {
	const pw = "autosign-Secret-42"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "autosign.yaml")
	os.WriteFile(policy, []byte("password_file: "+pwFile+"\nrequire_ec2: true\nregions: [eu-west-1]\n"), 0o644)
	ext := map[string]string{"1.3.6.1.4.1.34380.1.1.2": "i-0123456789abcdef0", "1.3.6.1.4.1.34380.1.1.18": "eu-west-1"}
	csr := func(pass string) string {
		b, err := puppettest.CSR{CommonName: "i-0123456789abcdef0", Password: pass, Extensions: ext}.PEM()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string
	}{
		{"signs", []string{"autosign", "--policy", policy, "i-0123456789abcdef0"}, csr(pw), 0, "autosign: signing"},
		{"wrong password", []string{"autosign", "--policy", policy, "i-0123456789abcdef0"}, csr("wrong-" + pw), 1, "reason=\"the challengePassword does not match\""},
		{"not a CSR", []string{"autosign", "--policy", policy, "i-0123456789abcdef0"}, "junk", 1, "stdin holds no PEM CERTIFICATE REQUEST"},
		{"too large", []string{"autosign", "--policy", policy, "n"}, strings.Repeat("x", 70<<10), 1, "the CSR is over 65536 bytes"},
		{"no policy", []string{"autosign", "--policy", filepath.Join(dir, "none.yaml"), "n"}, csr(pw), 2, "cannot read the policy; not signing"},
		{"no certname", []string{"autosign", "--policy", policy}, csr(pw), 2, "want one argument, the certname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), tt.args, strings.NewReader(tt.stdin), &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.stderr)
			}
			if strings.Contains(errb.String()+out.String(), pw) {
				t.Errorf("the password is in the output: %s", errb.String())
			}
		})
	}
}

func TestAutosignByName(t *testing.T) {
	got := autosignArgs("/usr/local/bin/bootstrap-autosign", []string{"n1"})
	if strings.Join(got, " ") != "autosign n1" {
		t.Errorf("as bootstrap-autosign: %q", got)
	}
	if got := autosignArgs("/usr/bin/bootstrap", []string{"run"}); strings.Join(got, " ") != "run" {
		t.Errorf("as bootstrap: %q", got)
	}
}

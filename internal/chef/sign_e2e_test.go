//go:build e2e

package chef

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// need fails (under BOOTSTRAP_E2E=1) or skips when a prerequisite is missing.
func need(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("BOOTSTRAP_E2E") != "" {
			t.Fatalf("%s missing: install Debian's %s (scripts/setup.sh)", path, pkg)
		}
		t.Skipf("%s missing (Debian %s)", path, pkg)
	}
}

func headerLines(h map[string][]string, keep func(string) bool) string {
	var lines []string
	for k, v := range h {
		if keep(k) {
			lines = append(lines, strings.ToLower(k)+": "+v[0])
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func parseLines(out string, keep func(string) bool) map[string][]string {
	h := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		if keep(k) {
			h[k] = []string{v}
		}
	}
	return h
}

func writeTestKey(t *testing.T, dir string) string {
	p := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey(t))}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignMatchesMixlib compares our headers byte for byte with Ruby
// mixlib-authentication's (Chef's own signing code), for 1.0 and 1.3.
func TestSignMatchesMixlib(t *testing.T) {
	need(t, "/usr/bin/ruby", "ruby")
	need(t, "/usr/share/rubygems-integration/all/gems/mixlib-authentication-3.0.6", "ruby-mixlib-authentication")
	dir := t.TempDir()
	keyFile := writeTestKey(t, dir)
	now := time.Date(2026, 12, 2, 18, 4, 5, 0, time.UTC)
	keep := func(k string) bool {
		return strings.HasPrefix(strings.ToLower(k), "x-ops-") && !strings.EqualFold(k, "X-Ops-Server-API-Version")
	}
	for _, c := range []struct{ version, method, path, body string }{
		{Sign13, "POST", "/organizations/acme//clients/", `{"name":"i-0abc","admin":false,"public_key":"-----BEGIN PUBLIC KEY-----\n"}`},
		{Sign10, "POST", "/clients", `{"name":"i-0abc"}`},
		{Sign13, "GET", "/nodes/i-0abc", ""},
		{Sign10, "PUT", "/nodes/i-0abc/", `{"run_list":["recipe[a]"]}`},
	} {
		bodyFile := filepath.Join(dir, "body")
		os.WriteFile(bodyFile, []byte(c.body), 0o600)
		out, err := exec.Command("ruby", "testdata/sign.rb", keyFile, c.method, c.path, bodyFile,
			now.Format(time.RFC3339), "acme-validator", c.version).CombinedOutput()
		if err != nil {
			t.Fatalf("ruby: %v\n%s", err, out)
		}
		h, err := Signer{UserID: "acme-validator", Key: testKey(t), Version: c.version}.Headers(c.method, c.path, []byte(c.body), now)
		if err != nil {
			t.Fatal(err)
		}
		got, want := headerLines(h, keep), headerLines(parseLines(string(out), keep), keep)
		if got != want || !strings.Contains(got, "x-ops-authorization-1") {
			t.Errorf("%s %s %s:\nours:\n%s\nmixlib-authentication:\n%s", c.version, c.method, c.path, got, want)
		}
	}
}

// TestSignMatchesGoChef compares our 1.0 signatures with Debian's go-chef,
// built here in GOPATH mode from /usr/share/gocode (a test-only reference:
// nothing of it is in this repository).
func TestSignMatchesGoChef(t *testing.T) {
	need(t, "/usr/share/gocode/src/github.com/go-chef/chef/http.go", "golang-github-go-chef-chef-dev")
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/gochef/main.go.txt")
	if err != nil {
		t.Fatal(err)
	}
	gp := filepath.Join(dir, "gopath")
	os.MkdirAll(filepath.Join(gp, "src", "ref"), 0o755)
	os.WriteFile(filepath.Join(gp, "src", "ref", "main.go"), src, 0o644)
	bin := filepath.Join(dir, "ref")
	build := exec.Command("go", "build", "-o", bin, "ref")
	build.Dir = filepath.Join(gp, "src", "ref")
	build.Env = append(os.Environ(), "GO111MODULE=off", "GOPATH="+gp+":/usr/share/gocode", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build go-chef reference: %v\n%s", err, out)
	}
	keyFile := writeTestKey(t, dir)
	keep := func(k string) bool {
		k = strings.ToLower(k)
		return strings.HasPrefix(k, "x-ops-") && k != "x-ops-sign" && k != "x-ops-server-api-version"
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/clients", `{"name":"i-0abc","admin":false}`},
		{"GET", "/nodes/i-0abc", ""},
		{"PUT", "/organizations/acme/nodes/i-0abc", `{"run_list":["role[web]"]}`},
	} {
		bodyFile := filepath.Join(dir, "body")
		os.WriteFile(bodyFile, []byte(c.body), 0o600)
		out, err := exec.Command(bin, keyFile, c.method, "https://chef.example.com"+c.path, bodyFile, "i-0abc").CombinedOutput()
		if err != nil {
			t.Fatalf("go-chef: %v\n%s", err, out)
		}
		ref := parseLines(string(out), keep)
		// go-chef stamps the current time: sign with the same.
		now, err := time.Parse(time.RFC3339, ref["X-Ops-Timestamp"][0])
		if err != nil {
			t.Fatal(err)
		}
		h, err := Signer{UserID: "i-0abc", Key: testKey(t), Version: Sign10}.Headers(c.method, c.path, []byte(c.body), now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := headerLines(h, keep), headerLines(ref, keep); got != want || !strings.Contains(got, "x-ops-authorization-1") {
			t.Errorf("%s %s:\nours:\n%s\ngo-chef:\n%s", c.method, c.path, got, want)
		}
	}
}

package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func sum(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// init makes httptest's TLS certificate (the same in every server) the only
// trusted root before anything loads the system roots, so that the program's
// own https:// client trusts a loopback server. The file has a fixed name:
// its content never changes, so runs do not pile up copies.
func init() {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	cert := srv.Certificate().Raw
	srv.Close()
	// Written aside and renamed: test binaries of other clones may read it.
	pemFile := filepath.Join(os.TempDir(), "bootstrap-test-httptest-ca.pem")
	tmp, err := os.CreateTemp(os.TempDir(), "bootstrap-test-ca-*")
	if err == nil {
		_, err = tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}))
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), pemFile)
	}
	if err != nil {
		panic(err)
	}
	os.Setenv("SSL_CERT_FILE", pemFile)
	os.Setenv("SSL_CERT_DIR", os.DevNull)
}

// serveLoopback serves path → body over https on 127.0.0.1 and returns its
// base URL.
func serveLoopback(t *testing.T, files map[string]string) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(srv.Close)
	return srv.URL
}

// fileInstance is a Vagrant-style seed directory, a root and a state dir.
func fileInstance(t *testing.T, userData []byte) []string {
	t.Helper()
	dir := t.TempDir()
	seed, root, st := filepath.Join(dir, "seed"), filepath.Join(dir, "root"), filepath.Join(dir, "state")
	os.MkdirAll(seed, 0o755)
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: vagrant-secrets\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), userData, 0o644)
	return []string{"--datasource", "file", "--datasource-dir", seed, "--root", root, "--state-dir", st}
}

func journalOf(t *testing.T, flags []string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(flags[len(flags)-1], "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func presign(base, path, sig string) string {
	return base + path + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAPRESIGNEDEXAMPLE%2F20261202%2Feu-west-1%2Fs3%2Faws4_request" +
		"&X-Amz-Expires=3600&X-Amz-Security-Token=presigned-session-TOKEN-value%2Fx%3D&X-Amz-Signature=" + sig
}

// Every place that shows a source shows a presigned URL without its
// signature, credential and token: validate, plan, plan --json, the "layer
// fetched" log, errors and the journal.
func TestPresignedSourcesAreShownScrubbed(t *testing.T) {
	files := map[string]string{"/file.txt": "public content\n", "/bad.yaml": "fiels: []\n"}
	base := serveLoopback(t, files)
	sigLayer, sigFile, sigBad := strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32)
	files["/layer.yaml"] = fmt.Sprintf("files:\n  - path: /etc/app/public.txt\n    source: %s\n    sha256: %s\n",
		presign(base, "/file.txt", sigFile), sum(files["/file.txt"]))
	hidden := []string{sigLayer, sigFile, sigBad, "presigned-session-TOKEN", "ASIAPRESIGNEDEXAMPLE"}
	check := func(what, out string) {
		t.Helper()
		for _, h := range hidden {
			if strings.Contains(out, h) {
				t.Errorf("%s shows %q:\n%s", what, h, out)
			}
		}
	}

	good := fileInstance(t, fmt.Appendf(nil, "include:\n  - source: %s\n    sha256: %s\n",
		presign(base, "/layer.yaml", sigLayer), sum(files["/layer.yaml"])))
	for _, args := range [][]string{{"validate"}, {"plan"}, {"plan", "--json"}, {"run", "--log-format", "json"}} {
		code, out, errs := runCLI(t, "", append(args, good...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
		check(strings.Join(args, " "), out+errs)
		if !strings.Contains(out+errs, "X-Amz-Signature=REDACTED") {
			t.Errorf("%v does not show the scrubbed source:\n%s%s", args, out, errs)
		}
	}
	code, out, errs := runCLI(t, "", append([]string{"run"}, good...)...)
	if code != 0 || !strings.Contains(out+errs, "layer.yaml?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED") {
		t.Errorf("the layer fetched log should name the scrubbed source: %d\n%s", code, errs)
	}
	check("journal", journalOf(t, good))

	// An error in a presigned layer names it scrubbed, in the message and the journal.
	bad := fileInstance(t, fmt.Appendf(nil, "include:\n  - source: %s\n    sha256: %s\n",
		presign(base, "/bad.yaml", sigBad), sum(files["/bad.yaml"])))
	code, out, errs = runCLI(t, "", append([]string{"run"}, bad...)...)
	if code != 2 || !strings.Contains(errs, "bad.yaml?X-Amz-Algorithm=AWS4-HMAC-SHA256") || !strings.Contains(errs, "fiels") {
		t.Errorf("run of a bad layer: exit %d\n%s", code, errs)
	}
	check("error", out+errs)
	check("journal", journalOf(t, bad))
}

// A sha256 mismatch on a secret source names the file and says the digest
// differs; neither digest is printed or journaled.
func TestSecretSHA256MismatchShowsNoDigest(t *testing.T) {
	files := map[string]string{"/pw": "hunter2\n"}
	base := serveLoopback(t, files)
	pinned := sum("the-password-it-should-be\n")
	flags := fileInstance(t, fmt.Appendf(nil, "files:\n  - path: /etc/app/pw\n    source: %s/pw\n    sha256: %s\n    secret: true\n", base, pinned))
	code, out, errs := runCLI(t, "", append([]string{"run"}, flags...)...)
	if code == 0 || !strings.Contains(errs, "/etc/app/pw") || !strings.Contains(errs, "sha256") {
		t.Fatalf("exit %d, want a failure naming the file and the sha256:\n%s", code, errs)
	}
	for where, text := range map[string]string{"output": out + errs, "journal": journalOf(t, flags)} {
		if strings.Contains(text, pinned) || strings.Contains(text, sum(files["/pw"])) {
			t.Errorf("%s shows a digest of the secret:\n%s", where, text)
		}
	}
}

func gzipped(b string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(b))
	zw.Close()
	return buf.Bytes()
}

// Secrets hidden in gzip user-data and base64 MIME parts, and short secret
// file content, are masked in a script's output under set -x, in text and
// JSON logs.
func TestEncodedUserDataAndShortSecretsAreMasked(t *testing.T) {
	const dbPassword = "gz-b64-Pa55w0rd-in-script"
	script := "#!/bin/sh\nset -x\nDB_PASSWORD=" + dbPassword + "\necho \"password is $DB_PASSWORD\"\n" +
		"cat \"$BOOTSTRAP_ROOT/etc/app/pin\"; echo\ncat \"$BOOTSTRAP_ROOT/etc/app/pw\"\n"
	config := "files:\n  - path: /etc/app/pin\n    content: \"Z\"\n    secret: true\n" +
		"  - path: /etc/app/pw\n    content: \"q1w2e\\n\"\n    secret: true\n"
	mime := "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n" +
		"--XX\nContent-Type: text/x-bootstrap-config\nContent-Transfer-Encoding: base64\n\n" + base64.StdEncoding.EncodeToString([]byte(config)) + "\n" +
		"--XX\nContent-Type: text/x-shellscript\nContent-Transfer-Encoding: base64\n\n" + base64.StdEncoding.EncodeToString([]byte(script)) + "\n" +
		"--XX--\n"
	for _, format := range []string{"text", "json"} {
		flags := fileInstance(t, gzipped(mime))
		code, out, errs := runCLI(t, "", append([]string{"run", "--log-format", format}, flags...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", format, code, out, errs)
		}
		if !strings.Contains(errs, "password is") || strings.Count(errs, "REDACTED") < 4 {
			t.Errorf("%s: script output not logged, or not masked:\n%s", format, errs)
		}
		for _, s := range []string{dbPassword, "q1w2e"} {
			if strings.Contains(out+errs, s) {
				t.Errorf("%s log shows the secret %q:\n%s", format, s, errs)
			}
		}
		// The one-letter pin may appear inside words (timestamps end in Z),
		// never alone.
		if pin := regexp.MustCompile(`(^|[^A-Za-z0-9])Z([^A-Za-z0-9]|$)`).FindString(errs); pin != "" {
			t.Errorf("%s log shows the one-letter secret (%q):\n%s", format, pin, errs)
		}
	}
}

//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

// curlCredentials is a user-data script that does what scripts do: reads
// the role's credentials from IMDS and prints them, whole and one value
// alone.
const curlCredentials = `#!/bin/sh
set -e
ep="$AWS_EC2_METADATA_SERVICE_ENDPOINT"
tok=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" "$ep/latest/api/token")
role=$(curl -sf -H "X-aws-ec2-metadata-token: $tok" "$ep/latest/meta-data/iam/security-credentials/")
curl -sf -H "X-aws-ec2-metadata-token: $tok" "$ep/latest/meta-data/iam/security-credentials/$role"
echo
curl -sf -H "X-aws-ec2-metadata-token: $tok" "$ep/latest/meta-data/iam/security-credentials/$role" |
  sed -n 's/.*"SecretAccessKey" *: *"\([^"]*\)".*/secret key: \1/p'
`

// The role's credentials, and the set IMDS rotated to while S3 refused the
// first, never appear when a user-data script prints them.
func TestRoleCredentialsPrintedByAScriptAreMasked(t *testing.T) {
	ctx := context.Background()
	rotated, err := s3.AssumeRole(ctx, minio.ReadOnlyPolicy("config", ""), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	scanFor("rotated access key id", rotated.AccessKeyID)
	scanFor("rotated secret access key", rotated.SecretAccessKey)
	scanFor("rotated session token", rotated.Token)

	b := newBed(t, testbed.IMDSConfig{})
	// S3 refuses the first set as expired, and IMDS rotates meanwhile.
	target, _ := url.Parse(s3.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			b.imds.SetCredentials(rotated)
			s3Error(w, http.StatusBadRequest, "ExpiredToken", "The provided token has expired.")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	b.imds.SetUserData(mimeDoc(
		mimePart{"text/x-bootstrap-config", "", string(userData(srv.URL, "", "s3://config/layers/base.yaml"))},
		mimePart{"text/x-shellscript", "", curlCredentials},
	))
	for _, format := range []string{"json", "text"} {
		os.RemoveAll(b.state)
		r := b.run(t, "run", "--log-format", format)
		if r.code != 0 {
			t.Fatalf("run: %s", r)
		}
		if !strings.Contains(r.stderr, "AccessKeyId") || !strings.Contains(r.stderr, "secret key: [REDACTED]") {
			t.Errorf("the script's output is not logged, or not masked:\n%s", r.stderr)
		}
		for _, s := range []string{creds.SecretAccessKey, rotated.AccessKeyID, rotated.SecretAccessKey, rotated.Token} {
			if leaks(r.stdout+r.stderr, s) {
				t.Errorf("%s log shows role credentials:\n%s", format, r.stderr)
			}
		}
	}
}

// A script alone, with no s3:// source that needed the role's credentials:
// the run learns them before the script can print them.
func TestRoleCredentialsAreLearntBeforeScripts(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData([]byte(curlCredentials))
	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if !strings.Contains(r.stderr, "secret key: [REDACTED]") {
		t.Errorf("the script's output is not logged, or not masked:\n%s", r.stderr)
	}
	for _, s := range []string{creds.AccessKeyID, creds.SecretAccessKey, creds.Token} {
		if leaks(r.stdout+r.stderr, s) {
			t.Errorf("the log shows role credentials:\n%s", r.stderr)
		}
	}
}

type mimePart struct{ ctype, encoding, body string }

func mimeDoc(parts ...mimePart) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"==E2E==\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--==E2E==\nContent-Type: " + p.ctype + "\n")
		body := p.body
		if p.encoding == "base64" {
			b.WriteString("Content-Transfer-Encoding: base64\n")
			body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		b.WriteString("\n" + body + "\n")
	}
	b.WriteString("--==E2E==--\n")
	return []byte(b.String())
}

// A script hidden in gzip user-data as a base64 MIME part runs with set -x;
// it prints a short secret file, and a secret it assigned in the middle of a
// line longer than the line writer's buffer, in two writes. None of them
// appears.
func TestSecretsInEncodedUserDataShortAndCutAreMasked(t *testing.T) {
	const dbPassword = "e2e-gzip-b64-Db-Passw0rd"
	const short = "Zq9"
	const cut = "e2e-long-line-Secret-Cut-By-A-Flush"
	scanFor("password in gzip user-data", dbPassword)
	scanFor("short secret", short)
	scanFor("secret cut by a long line", cut)
	script := `#!/bin/sh
set -ex
DB_PASSWORD=` + dbPassword + `
echo "connecting with $DB_PASSWORD"
cat "$BOOTSTRAP_ROOT/etc/app/pin"
set +x
CUT_TOKEN=` + cut + `
head -c 65530 /dev/zero | tr '\0' x
printf '%s' "$CUT_TOKEN" | cut -c1-18 | tr -d '\n'
sleep 0.3
printf '%s' "$CUT_TOKEN" | cut -c19-
`
	config := string(userData(s3.URL, "files:\n  - path: /etc/app/pin\n    content: \""+short+"\\n\"\n    secret: true\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(mimeDoc(mimePart{"text/x-bootstrap-config", "base64", config}, mimePart{"text/x-shellscript", "base64", script}))
	zw.Close()

	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(gz.Bytes())
	for _, format := range []string{"json", "text"} {
		os.RemoveAll(b.state)
		r := b.run(t, "run", "--log-format", format)
		if r.code != 0 {
			t.Fatalf("run: %s", r)
		}
		if !strings.Contains(r.stderr, "connecting with [REDACTED]") || !strings.Contains(r.stderr, "xxxx[REDACTED]") {
			t.Errorf("%s: the script's output is not logged, or not masked", format)
		}
		for _, s := range []string{dbPassword, short, cut} {
			if leaks(r.stdout+r.stderr, s) {
				t.Errorf("%s log shows a secret (%.4s…):\n%s", format, s, r.stderr)
			}
		}
	}
}

// A presigned https URL (signature, credential, session token) is shown
// scrubbed by validate, plan, plan --json, run's log and the journal.
func TestPresignedURLIsNeverShown(t *testing.T) {
	// TLS in front of MinIO; the Host header passes through, so a URL
	// presigned for the proxy verifies at MinIO.
	target, _ := url.Parse(s3.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewTLSServer(proxy)
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer front.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o644)

	presigner := awss3.NewPresignClient(awss3.New(awss3.Options{
		Region: "eu-west-1", UsePathStyle: true, BaseEndpoint: aws.String(front.URL),
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.Token),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
	}))
	req, err := presigner.PresignGetObject(context.Background(), &awss3.GetObjectInput{
		Bucket: aws.String("config"), Key: aws.String("layers/base.yaml")}, awss3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(req.URL)
	sig := u.Query().Get("X-Amz-Signature")
	if sig == "" || u.Query().Get("X-Amz-Security-Token") == "" {
		t.Fatalf("presigned URL lacks a signature or token: %s", u.Path)
	}
	scanFor("presigned URL signature", sig)

	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(s3.URL, "", req.URL))
	env := []string{"SSL_CERT_FILE=" + ca}
	for _, args := range [][]string{{"validate"}, {"plan"}, {"plan", "--json"}, {"run"}} {
		r := b.runEnv(t, env, args...)
		if r.code != 0 {
			t.Fatalf("%v: %s", args, r)
		}
		out := r.stdout + r.stderr
		if !strings.Contains(out, "X-Amz-Signature=REDACTED") {
			t.Errorf("%v does not show the scrubbed URL:\n%s", args, out)
		}
		for _, s := range []string{sig, creds.Token, creds.AccessKeyID} {
			if leaks(out, s) {
				t.Errorf("%v shows a part of the presigned URL:\n%s", args, out)
			}
		}
	}
	if j := mustRead(t, filepath.Join(b.state, "journal.jsonl")); leaks(j, sig) {
		t.Errorf("the journal shows the signature")
	}
}

package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/testbed"
)

// Every set of role credentials the fetcher obtains, the first and each one
// fetched after S3 refused the last, is registered with the redactor at once:
// a user-data script that curls them from IMDS must not print them.
func TestRoleCredentialsAreRegistered(t *testing.T) {
	isolateAWSEnv(t)
	in := newInstance(t, testbed.IMDSConfig{Role: "web"}, 2*time.Second)
	first := in.imds.Config().Credentials
	rotated := testbed.Credentials{AccessKeyID: "ASIAROTATEDEXAMPLE01", SecretAccessKey: "rotated/secret/access/key/EXAMPLE1",
		Token: "rotated-session-token-EXAMPLE", Expiration: time.Now().Add(6 * time.Hour)}
	sc := &script{step: func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			in.imds.SetCredentials(rotated) // IMDS rotated while S3 refused the old set
			s3Error(w, 400, "ExpiredToken", "The provided token has expired.")
			return
		}
		serve(w, payload)
	}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	var r secret.Redactor
	f := newTest(Options{Region: "eu-west-1", S3Endpoint: srv.URL, S3PathStyle: true,
		IMDS: in.ds.CredentialsClient(), Role: in.ds.Role, Redactor: &r}, nil)
	if _, err := f.Bytes(context.Background(), "s3://config/layers/base.yaml", "", 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []testbed.Credentials{first, rotated} {
		for what, v := range map[string]string{"access key id": c.AccessKeyID, "secret key": c.SecretAccessKey, "token": c.Token} {
			if got := r.Redact("curl: " + v + "\n"); strings.Contains(got, v) {
				t.Errorf("%s of %s not registered: %q", what, c.AccessKeyID, got)
			}
		}
	}
}

// A source's hidden parts (presigned query values) are registered too, so a
// message that quotes the raw URL is masked.
func TestSourceSecretsAreRegistered(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }))
	defer srv.Close()
	var r secret.Redactor
	f := newTest(Options{HTTPClient: srv.Client(), Redactor: &r}, nil)
	sig := "0123456789abcdef0123456789abcdef"
	src := srv.URL + "/x.yaml?X-Amz-Expires=60&X-Amz-Signature=" + sig
	_, err := f.Bytes(context.Background(), src, "", 0)
	if err == nil || strings.Contains(err.Error(), sig) || !strings.Contains(err.Error(), "X-Amz-Expires=60&X-Amz-Signature=REDACTED") {
		t.Fatalf("err = %v", err)
	}
	if got := r.Redact("raw " + src); strings.Contains(got, sig) {
		t.Fatalf("signature not registered: %s", got)
	}
}

// A sha256 mismatch on secret content names the source and says the digest
// differs, but shows neither digest: a digest of a short secret can be
// brute-forced. Other content shows both, to help pin it.
func TestSHA256MismatchOfSecretShowsNoDigest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "password")
	os.WriteFile(path, []byte("hunter2\n"), 0o600)
	got := digest([]byte("hunter2\n"))
	want := digest([]byte("other\n"))
	srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, []byte("hunter2\n")) }))
	defer srv.Close()
	f := newTest(Options{HTTPClient: srv.Client()}, nil)
	for _, src := range []string{"file://" + path, srv.URL + "/password"} {
		for _, secretContent := range []bool{true, false} {
			ctx := context.Background()
			if secretContent {
				ctx = WithSecret(ctx)
			}
			_, err := f.Bytes(ctx, src, want, 0)
			var fe *Error
			if !errors.As(err, &fe) || fe.Code != CodeSHA256Mismatch {
				t.Fatalf("%s: err = %v", src, err)
			}
			shown := strings.Contains(err.Error(), got) || strings.Contains(err.Error(), want)
			if shown == secretContent {
				t.Errorf("%s (secret %v): digests shown %v: %v", src, secretContent, shown, err)
			}
			if !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), DisplaySource(src)) {
				t.Errorf("%s: message should name the source and the sha256: %v", src, err)
			}
			blob, err := f.File(ctx, src, want, dir)
			if err == nil || (strings.Contains(err.Error(), got) == secretContent) && secretContent {
				t.Errorf("File %s (secret %v): %v %v", src, secretContent, blob, err)
			}
		}
	}
}

// Before a script runs, the run learns the role's credentials even when no
// s3:// source needed them; an instance without a role costs one request
// and no wait.
func TestLearnRoleCredentials(t *testing.T) {
	isolateAWSEnv(t)
	in := newInstance(t, testbed.IMDSConfig{Role: "web"}, 2*time.Second)
	var r secret.Redactor
	f := newTest(Options{Region: "eu-west-1", IMDS: in.ds.CredentialsClient(), Role: in.ds.Role, Redactor: &r}, nil)
	f.LearnRoleCredentials(context.Background())
	c := in.imds.Config().Credentials
	for _, v := range []string{c.AccessKeyID, c.SecretAccessKey, c.Token} {
		if got := r.Redact(v); got != secret.Mask {
			t.Errorf("credential not registered: %q", got)
		}
	}
	n := in.ds.Requests()
	f.LearnRoleCredentials(context.Background())
	if in.ds.Requests() != n {
		t.Errorf("credentials fetched again: %d requests", in.ds.Requests()-n)
	}

	none := newInstance(t, testbed.IMDSConfig{}, 2*time.Second)
	var r2 secret.Redactor
	f = newTest(Options{Region: "eu-west-1", IMDS: none.ds.CredentialsClient(), Role: none.ds.Role, Redactor: &r2}, nil)
	start := time.Now()
	f.LearnRoleCredentials(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Errorf("an instance without a role waited %s", took)
	}
}

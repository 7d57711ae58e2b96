package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/datasource"
	"github.com/opsboot/bootstrap/internal/testbed"
)

// isolateAWSEnv keeps the developer's AWS settings out of a test: the
// credentials must come from the IMDS emulator and nowhere else.
func isolateAWSEnv(t testing.TB) {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
}

// instance is an emulated EC2 instance: IMDS plus the datasource over it.
type instance struct {
	imds *testbed.IMDS
	ds   *datasource.EC2
}

func newInstance(t testing.TB, cfg testbed.IMDSConfig, deadline time.Duration) *instance {
	t.Helper()
	m := testbed.NewIMDS(cfg)
	u, err := m.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &instance{imds: m, ds: datasource.NewEC2(datasource.EC2Options{Endpoint: u, Deadline: deadline})}
}

// credentialGETs counts the requests for the role's credentials document.
func (in *instance) credentialGETs(role string) int {
	n := 0
	for _, r := range in.imds.Requests() {
		if r.Path == "/latest/meta-data/iam/security-credentials/"+role {
			n++
		}
	}
	return n
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>`, code, msg)
}

// TestS3Answers drives the S3 path against a scripted S3 (for answers
// MinIO cannot be made to give on cue), with credentials from the IMDS
// emulator through the datasource's shared client.
func TestS3Answers(t *testing.T) {
	const role = "web"
	const src = "s3://config/layers/base.yaml"
	tests := []struct {
		name       string
		step       func(n int, w http.ResponseWriter, r *http.Request)
		deadline   time.Duration
		window     time.Duration // IAM propagation
		setup      func(in *instance)
		imdsCfg    testbed.IMDSConfig
		wantCode   string // "" = success
		wantFinal  bool
		wantCalls  int64 // S3 requests; 0 = do not check
		wantMsg    []string
		check      func(t *testing.T, in *instance, took time.Duration)
		notWantMsg []string
	}{
		{
			name: "IAM propagation: AccessDenied, then allowed", wantCalls: 4,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n < 3 {
					s3Error(w, 403, "AccessDenied", "Access Denied")
					return
				}
				serve(w, payload)
			},
		},
		{
			name: "AccessDenied until the deadline names bucket, key and role", deadline: 500 * time.Millisecond,
			wantCode: "AccessDenied",
			step:     func(n int, w http.ResponseWriter, r *http.Request) { s3Error(w, 403, "AccessDenied", "Access Denied") },
			wantMsg: []string{src + `: access denied (AccessDenied) for role "web" after `, " attempts in 500ms",
				"s3:GetObject on arn:aws:s3:::config/layers/base.yaml"},
		},
		{
			name:     "AccessDenied past the IAM propagation window is final before the deadline",
			deadline: 3 * time.Second, window: 300 * time.Millisecond, wantCode: "AccessDenied", wantFinal: true,
			step: func(n int, w http.ResponseWriter, r *http.Request) { s3Error(w, 403, "AccessDenied", "Access Denied") },
			wantMsg: []string{src + `: access denied (AccessDenied) for role "web" after `,
				", still denied 300ms after the credentials appeared", "s3:GetObject on arn:aws:s3:::config/layers/base.yaml"},
			check: func(t *testing.T, in *instance, took time.Duration) {
				if took < 250*time.Millisecond || took > 1500*time.Millisecond {
					t.Errorf("took %v, want about the 300ms window, well before the 3s deadline", took)
				}
			},
		},
		{
			name: "ExpiredToken drops the cached credentials", wantCalls: 2,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 0 {
					s3Error(w, 400, "ExpiredToken", "The provided token has expired.")
					return
				}
				serve(w, payload)
			},
			check: func(t *testing.T, in *instance, took time.Duration) {
				if n := in.credentialGETs(role); n != 2 {
					t.Errorf("credentials fetched %d times, want 2 (refetched after ExpiredToken)", n)
				}
			},
		},
		{
			name: "a server message quoting the access key is scrubbed", deadline: 300 * time.Millisecond,
			wantCode: "InvalidAccessKeyId",
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				s3Error(w, 403, "InvalidAccessKeyId", "The AWS Access Key Id ASIAEMULATOREXAMPLE0 does not exist in our records.")
			},
			wantMsg:    []string{"[REDACTED]", `for role "web"`},
			notWantMsg: []string{"ASIAEMULATOREXAMPLE0"},
		},
		{
			name: "NoSuchKey is final at once", wantCode: "NoSuchKey", wantFinal: true, wantCalls: 1,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				s3Error(w, 404, "NoSuchKey", "The specified key does not exist.")
			},
			wantMsg: []string{src + ": no such key (NoSuchKey); check the key"},
			check: func(t *testing.T, in *instance, took time.Duration) {
				if took > 1500*time.Millisecond {
					t.Errorf("NoSuchKey took %v", took)
				}
			},
		},
		{
			name: "NoSuchBucket is final", wantCode: "NoSuchBucket", wantFinal: true, wantCalls: 1,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				s3Error(w, 404, "NoSuchBucket", "The specified bucket does not exist")
			},
		},
		{
			name: "wrong region is final with a hint", wantCode: "PermanentRedirect", wantFinal: true, wantCalls: 1,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				s3Error(w, 301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint.")
			},
			wantMsg: []string{"the bucket is in another region"},
		},
		{
			name: "SlowDown, then ok", wantCalls: 3,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n < 2 {
					s3Error(w, 503, "SlowDown", "Please reduce your request rate.")
					return
				}
				serve(w, payload)
			},
		},
		{
			name:    "role list 404 at boot is waited out",
			imdsCfg: testbed.IMDSConfig{Role: role},
			setup:   func(in *instance) { in.imds.RoleMissingFor(600 * time.Millisecond) },
			step:    func(n int, w http.ResponseWriter, r *http.Request) { serve(w, payload) },
			check: func(t *testing.T, in *instance, took time.Duration) {
				if took < 500*time.Millisecond {
					t.Errorf("took %v: did not wait for the role", took)
				}
			},
		},
		{
			name:    "no role at all",
			imdsCfg: testbed.IMDSConfig{}, deadline: 400 * time.Millisecond,
			wantCode: CodeNoCredentials, wantFinal: true, wantCalls: -1,
			step:    func(n int, w http.ResponseWriter, r *http.Request) { serve(w, payload) },
			wantMsg: []string{src + ": cannot get credentials: no IAM role on this instance", "attach an instance profile"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t)
			cfg := tt.imdsCfg
			if tt.imdsCfg.Role == "" && tt.wantCode != CodeNoCredentials {
				cfg.Role = role
			}
			deadline := tt.deadline
			if deadline == 0 {
				deadline = 3 * time.Second
			}
			// IMDS gets its own, longer wait (a busy test machine can be
			// slow to answer the first token PUT), except where the role
			// lookup itself is meant to run out.
			imdsDeadline := 3 * time.Second
			if tt.wantCode == CodeNoCredentials {
				imdsDeadline = deadline
			}
			in := newInstance(t, cfg, imdsDeadline)
			if tt.setup != nil {
				tt.setup(in)
			}
			sc := &script{step: func(n int, w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.Header.Get("Authorization"), "Credential=ASIAEMULATOREXAMPLE0/") ||
					r.Header.Get("X-Amz-Security-Token") == "" || r.URL.Path != "/config/layers/base.yaml" {
					s3Error(w, 400, "TestFailure", "request not signed with the role credentials")
					return
				}
				tt.step(n, w, r)
			}}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			var logs bytes.Buffer
			f := newTest(Options{Region: "eu-west-1", S3Endpoint: srv.URL, S3PathStyle: true,
				IMDS: in.ds.CredentialsClient(), Role: in.ds.Role, Deadline: deadline, IAMPropagation: tt.window}, &logs)
			start := time.Now()
			got, err := f.Bytes(context.Background(), src, "", 0)
			took := time.Since(start)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Bytes: %v", err)
				}
				if !bytes.Equal(got, payload) {
					t.Fatal("wrong content")
				}
			} else {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("err = %T %v, want *fetch.Error", err, err)
				}
				if fe.Code != tt.wantCode || fe.Final != tt.wantFinal || fe.Bucket != "config" || fe.Key != "layers/base.yaml" {
					t.Fatalf("Error %+v: %v", fe, err)
				}
				if !tt.wantFinal && fe.Deadline == 0 && fe.Propagation == 0 {
					t.Errorf("a waited-out error must say the deadline: %+v", fe)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("message %q lacks %q", err, m)
					}
				}
			}
			if tt.wantCalls > 0 && (sc.n.Load() != tt.wantCalls || f.Requests() != tt.wantCalls) {
				t.Errorf("S3 requests: server %d, counted %d, want %d", sc.n.Load(), f.Requests(), tt.wantCalls)
			}
			if tt.wantCalls < 0 && sc.n.Load() != 0 {
				t.Errorf("S3 was asked without credentials")
			}
			if tt.check != nil {
				tt.check(t, in, took)
			}
			c := in.imds.Config().Credentials
			secrets := append([]string{c.SecretAccessKey, c.Token}, tt.notWantMsg...)
			for _, s := range secrets {
				if err != nil && strings.Contains(err.Error(), s) {
					t.Errorf("error contains a secret")
				}
				if strings.Contains(logs.String(), s) {
					t.Errorf("log contains a secret")
				}
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	isolateAWSEnv(t)
	in := newInstance(t, testbed.IMDSConfig{Role: "web"}, 2*time.Second)
	f := newTest(Options{Region: "eu-west-1", IMDS: in.ds.CredentialsClient(), Role: in.ds.Role}, nil)
	c, err := f.Credentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := in.imds.Config().Credentials
	if c.AccessKeyID != want.AccessKeyID || c.SecretAccessKey != want.SecretAccessKey || c.SessionToken != want.Token {
		t.Fatal("credentials differ from the instance role's")
	}
	// Cached: no more IMDS requests.
	n := in.ds.Requests()
	if _, err := f.Credentials(context.Background()); err != nil || in.ds.Requests() != n {
		t.Fatalf("second Credentials: %v, %d new IMDS requests", err, in.ds.Requests()-n)
	}
}

func TestNoRegion(t *testing.T) {
	isolateAWSEnv(t)
	in := newInstance(t, testbed.IMDSConfig{Role: "web"}, time.Second)
	f := newTest(Options{IMDS: in.ds.CredentialsClient()}, nil)
	_, err := f.Bytes(context.Background(), "s3://b/k", "", 0)
	if err == nil || !strings.Contains(err.Error(), "no AWS region for S3") || f.Requests() != 0 {
		t.Fatalf("err = %v", err)
	}
}

package datasource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"

	"github.com/opsboot/bootstrap/internal/retry"
	"github.com/opsboot/bootstrap/internal/testbed"
)

const testUserData = "#cloud-config\npassword: hunter2-very-secret\n"

// startIMDS runs the emulator for the test's lifetime.
func startIMDS(t *testing.T, cfg testbed.IMDSConfig) (*testbed.IMDS, string) {
	t.Helper()
	m := testbed.NewIMDS(cfg)
	u, err := m.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, u
}

// newTestEC2 is NewEC2 with waits short enough for tests, logging to buf.
func newTestEC2(o EC2Options, buf *bytes.Buffer) *EC2 {
	if buf != nil {
		o.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.Deadline == 0 {
		o.Deadline = 5 * time.Second
	}
	e := NewEC2(o)
	e.backoff = retry.Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	e.attemptTimeout = 3 * time.Second
	return e
}

// closedPort is a 127.0.0.1 URL where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

func assertNoSecrets(t *testing.T, where string, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("%s contains a secret (%q)", where, s)
		}
	}
}

func TestEC2FetchEmulator(t *testing.T) {
	tests := []struct {
		name    string
		cfg     testbed.IMDSConfig
		opts    EC2Options
		fault   func(m *testbed.IMDS)
		wantErr string // "" = success
		check   func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration)
	}{
		{
			name: "normal run: v2 required, five requests",
			cfg:  testbed.IMDSConfig{UserData: []byte(testUserData), Role: "web"},
			opts: EC2Options{UserData: true},
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				want := map[string]string{
					"instance_id": "i-0123456789abcdef0", "region": "eu-west-1", "availability_zone": "eu-west-1a",
					"instance_type": "t3.micro", "ami_id": "ami-0123456789abcdef0", "local_ipv4": "10.0.1.23",
					"mac": "0e:00:00:00:00:01", "account_id": "123456789012", "hostname": "ip-10-0-1-23.eu-west-1.compute.internal",
				}
				got := md.Facts()
				for k, v := range want {
					if got[k] != v {
						t.Errorf("fact %s = %q, want %q", k, got[k], v)
					}
				}
				if string(md.UserData) != testUserData || md.Source != "ec2" || md.Tags != nil {
					t.Errorf("metadata %v", md)
				}
				if e.Requests() != 5 || m.RequestCount() != 5 {
					t.Errorf("requests: ours %d, emulator %d, want 5", e.Requests(), m.RequestCount())
				}
				for _, r := range m.Requests() {
					if r.Method == http.MethodGet && !r.HadToken {
						t.Errorf("GET %s without token", r.Path)
					}
				}
			},
		},
		{
			name: "no user-data given is not an error",
			opts: EC2Options{UserData: true},
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				if md.UserData != nil {
					t.Errorf("UserData = %q, want nil", md.UserData)
				}
			},
		},
		{
			name: "tags when asked: list plus one request per tag",
			cfg:  testbed.IMDSConfig{Tags: map[string]string{"Name": "web-1", "env": "prod"}},
			opts: EC2Options{Tags: true},
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				if len(md.Tags) != 2 || md.Tags["Name"] != "web-1" || md.Tags["env"] != "prod" {
					t.Errorf("Tags = %v", md.Tags)
				}
				if e.Requests() != 4+1+2 {
					t.Errorf("requests = %d, want 7", e.Requests())
				}
			},
		},
		{
			name:    "tags asked but not enabled on the instance",
			opts:    EC2Options{Tags: true},
			wantErr: "Allow tags in instance metadata",
		},
		{
			name:    "IMDSv1-only endpoint is refused unless allowed",
			cfg:     testbed.IMDSConfig{V1Only: true},
			wantErr: "IMDSv2 token refused (PUT /latest/api/token: HTTP 404 Not Found): the endpoint seems IMDSv1-only; to accept it, set imds.allow_v1: true in a local --config",
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				if took > 2*time.Second || m.RequestCount() != 1 {
					t.Errorf("a refused token must be final at once: took %v, %d requests", took, m.RequestCount())
				}
			},
		},
		{
			name: "IMDSv1-only endpoint with AllowV1",
			cfg:  testbed.IMDSConfig{V1Only: true},
			opts: EC2Options{AllowV1: true},
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				if md.InstanceID != "i-0123456789abcdef0" {
					t.Errorf("InstanceID = %q", md.InstanceID)
				}
			},
		},
		{
			name:  "down at boot: waits, then succeeds",
			fault: func(m *testbed.IMDS) { m.DownFor(700 * time.Millisecond) },
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				if took < 600*time.Millisecond {
					t.Errorf("took %v: did not wait for the endpoint", took)
				}
				if md.InstanceID == "" {
					t.Error("no instance id")
				}
			},
		},
		{
			// After a send failure the SDK would stay on IMDSv1 when the
			// endpoint accepts it; the fresh client goes back to tokens.
			name:  "after a send failure tokens are used again",
			cfg:   testbed.IMDSConfig{AllowV1: true},
			opts:  EC2Options{AllowV1: true},
			fault: func(m *testbed.IMDS) { m.DownFor(300 * time.Millisecond) },
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				for _, r := range m.Requests() {
					if r.Method == http.MethodGet && !r.HadToken {
						t.Errorf("GET %s went out as IMDSv1 after the outage", r.Path)
					}
				}
			},
		},
		{
			name:  "429 burst: waits it out",
			fault: func(m *testbed.IMDS) { m.Throttle(6, http.StatusTooManyRequests) },
			check: func(t *testing.T, m *testbed.IMDS, e *EC2, md *Metadata, took time.Duration) {
				if m.RequestCount() != 6+4 || e.Requests() != 10 {
					t.Errorf("requests: emulator %d, ours %d, want 10", m.RequestCount(), e.Requests())
				}
			},
		},
		{
			name:  "503 burst: waits it out",
			fault: func(m *testbed.IMDS) { m.Throttle(3, http.StatusServiceUnavailable) },
		},
		{
			name:  "slow answers",
			fault: func(m *testbed.IMDS) { m.Slow(150 * time.Millisecond) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, u := startIMDS(t, tt.cfg)
			if tt.fault != nil {
				tt.fault(m)
			}
			var logs bytes.Buffer
			o := tt.opts
			o.Endpoint = u
			e := newTestEC2(o, &logs)
			start := time.Now()
			md, err := e.Fetch(context.Background())
			took := time.Since(start)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), u) {
					t.Errorf("error does not name the endpoint: %v", err)
				}
			}
			if tt.check != nil {
				tt.check(t, m, e, md, took)
			}
			c := m.Config().Credentials
			assertNoSecrets(t, "log", logs.String(), "hunter2", c.SecretAccessKey, c.Token)
			if err != nil {
				assertNoSecrets(t, "error", err.Error(), "hunter2")
			}
		})
	}
}

func TestEC2NeverUp(t *testing.T) {
	u := closedPort(t)
	e := newTestEC2(EC2Options{Endpoint: u, Deadline: 1500 * time.Millisecond}, nil)
	start := time.Now()
	_, err := e.Fetch(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("Fetch succeeded against a closed port")
	}
	want := fmt.Sprintf("IMDS at %s did not answer within 1.5s (", u)
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") ||
		!strings.Contains(err.Error(), "PUT /latest/api/token") {
		t.Fatalf("error = %q, want prefix %q naming the request and the cause", err, want)
	}
	var de *retry.DeadlineError
	if !errors.As(err, &de) || de.Attempts < 3 {
		t.Fatalf("want a *retry.DeadlineError with several attempts, got %#v", de)
	}
	if took > 2500*time.Millisecond {
		t.Fatalf("took %v, past the 1.5s deadline", took)
	}
	if int64(de.Attempts) != e.Requests() {
		t.Errorf("attempts %d but %d requests counted", de.Attempts, e.Requests())
	}
}

func TestEC2ExpiredTokenRefreshed(t *testing.T) {
	m, u := startIMDS(t, testbed.IMDSConfig{UserData: []byte("x")})
	e := newTestEC2(EC2Options{Endpoint: u, UserData: true}, nil)
	if _, err := e.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A GET without a token is refused: the emulator really requires v2.
	resp, err := http.Get(u + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET without token: %d, want 401", resp.StatusCode)
	}
	m.ExpireTokens()
	before := e.Requests()
	md, err := e.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch after the token expired: %v", err)
	}
	if md.InstanceID == "" {
		t.Fatal("no instance id")
	}
	// 401 on the first GET, a new token, then the 4 GETs.
	if got := e.Requests() - before; got != 6 {
		t.Errorf("requests after token expiry = %d, want 6", got)
	}
}

func TestEC2Role(t *testing.T) {
	t.Run("role appears late", func(t *testing.T) {
		m, u := startIMDS(t, testbed.IMDSConfig{Role: "web"})
		m.RoleMissingFor(500 * time.Millisecond)
		e := newTestEC2(EC2Options{Endpoint: u}, nil)
		start := time.Now()
		role, err := e.Role(context.Background())
		if err != nil || role != "web" {
			t.Fatalf("Role = %q, %v", role, err)
		}
		if time.Since(start) < 400*time.Millisecond {
			t.Fatal("did not wait for the role")
		}
		n := e.Requests()
		if role, err := e.Role(context.Background()); err != nil || role != "web" || e.Requests() != n {
			t.Fatalf("second Role = %q, %v, %d new requests; want cached", role, err, e.Requests()-n)
		}
	})
	t.Run("no role attached", func(t *testing.T) {
		_, u := startIMDS(t, testbed.IMDSConfig{})
		e := newTestEC2(EC2Options{Endpoint: u, Deadline: 500 * time.Millisecond}, nil)
		_, err := e.Role(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no IAM role on this instance") ||
			!strings.Contains(err.Error(), "attach an instance profile") || !strings.Contains(err.Error(), u) {
			t.Fatalf("Role error = %v", err)
		}
	})
	t.Run("shared client for role credentials is counted", func(t *testing.T) {
		m, u := startIMDS(t, testbed.IMDSConfig{Role: "web"})
		e := newTestEC2(EC2Options{Endpoint: u}, nil)
		if _, err := e.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		before := e.Requests()
		p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = e.CredentialsClient() })
		creds, err := p.Retrieve(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if creds.AccessKeyID != m.Config().Credentials.AccessKeyID {
			t.Fatal("wrong credentials")
		}
		// The token is reused, and the role is not known yet: the role
		// list and the credentials.
		if got := e.Requests() - before; got != 2 || int64(m.RequestCount()) != e.Requests() {
			t.Fatalf("credential requests = %d (emulator total %d, ours %d), want 2 and equal totals", got, m.RequestCount(), e.Requests())
		}
	})
	t.Run("credentials client reuses the waited-for role list once", func(t *testing.T) {
		m, u := startIMDS(t, testbed.IMDSConfig{Role: "web"})
		e := newTestEC2(EC2Options{Endpoint: u}, nil)
		if _, err := e.Role(context.Background()); err != nil {
			t.Fatal(err)
		}
		listings := func() (n int) {
			for _, r := range m.Requests() {
				if r.Path == rolesPath {
					n++
				}
			}
			return n
		}
		p := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = e.CredentialsClient() })
		for i, want := range []int{1, 2} { // the first from Role, the second from the refresh
			creds, err := p.Retrieve(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessKeyID != m.Config().Credentials.AccessKeyID {
				t.Fatal("wrong credentials")
			}
			if got := listings(); got != want {
				t.Fatalf("retrieve %d: role listed %d times at IMDS, want %d", i+1, got, want)
			}
		}
		if int64(m.RequestCount()) != e.Requests() {
			t.Fatalf("emulator served %d, we counted %d", m.RequestCount(), e.Requests())
		}
	})
}

// TestEC2Answers covers answers the emulator does not give, with httptest.
func TestEC2Answers(t *testing.T) {
	tests := []struct {
		name     string
		token    int    // status for the token PUT
		status   int    // status for the identity document
		body     string // body for the identity document
		wantErr  string
		maxTries int64 // upper bound on requests: final errors stop at once
	}{
		{"token 400 is final", 400, 200, "", "rejected the token request (PUT /latest/api/token: HTTP 400 Bad Request)", 1},
		{"token 405 without v1 is final", 405, 200, "", "IMDSv1-only", 1},
		{"403 on a GET is final", 200, 403, "", "turned off for this instance", 2},
		{"404 on the identity document is final", 200, 404, "", "HTTP 404", 2},
		{"garbage identity document is final", 200, 200, "<html>", "unusable answer", 2},
		{"identity document without instanceId", 200, 200, `{"region":"x"}`, "has no instanceId", 2},
		{"418 is final", 200, 418, "", "HTTP 418", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tokenPath {
					w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "300")
					w.WriteHeader(tt.token)
					fmt.Fprint(w, "token-secret-value")
					return
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			e := newTestEC2(EC2Options{Endpoint: srv.URL, Deadline: 2 * time.Second}, nil)
			_, err := e.Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if e.Requests() > tt.maxTries {
				t.Fatalf("%d requests, want <= %d (final errors are not retried)", e.Requests(), tt.maxTries)
			}
			assertNoSecrets(t, "error", err.Error(), "token-secret-value")
		})
	}
}

func TestEC2Endpoint(t *testing.T) {
	tests := []struct {
		name, opt, env, mode, modeEnv, want string
	}{
		{"option wins", "http://127.0.0.1:1/", "http://127.0.0.1:2", "ipv6", "ipv6", "http://127.0.0.1:1"},
		{"env next", "", "http://127.0.0.1:2", "ipv6", "", "http://127.0.0.1:2"},
		{"default", "", "", "", "", DefaultEndpoint},
		{"mode ipv6", "", "", "ipv6", "", IPv6Endpoint},
		{"mode option over env", "", "", "IPv4", "ipv6", DefaultEndpoint},
		{"mode env", "", "", "", "IPv6", IPv6Endpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(endpointEnv, tt.env)
			t.Setenv(endpointModeEnv, tt.modeEnv)
			if got := NewEC2(EC2Options{Endpoint: tt.opt, EndpointMode: tt.mode}).Endpoint(); got != tt.want {
				t.Fatalf("Endpoint = %q, want %q", got, tt.want)
			}
		})
	}
	// Bad endpoints fail before any request is sent.
	t.Setenv(endpointModeEnv, "")
	for _, tt := range []struct {
		o    EC2Options
		want string
	}{
		{EC2Options{Endpoint: "169.254.169.254"}, "not an http:// URL"},
		{EC2Options{EndpointMode: "dualstack"}, `endpoint mode "dualstack": want ipv4 or ipv6`},
	} {
		e := NewEC2(tt.o)
		if _, err := e.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("bad endpoint error = %v, want %q", err, tt.want)
		}
		if e.Requests() != 0 {
			t.Fatal("requests sent to a bad endpoint")
		}
	}
}

func TestEC2Cancel(t *testing.T) {
	e := newTestEC2(EC2Options{Endpoint: closedPort(t), Deadline: time.Minute}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := e.Fetch(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("cancel not honoured promptly")
	}
}

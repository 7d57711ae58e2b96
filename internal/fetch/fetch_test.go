package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/retry"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newTest is New with waits short enough for tests, logging to buf.
func newTest(o Options, buf *bytes.Buffer) *Fetcher {
	if buf != nil {
		o.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.Deadline == 0 {
		o.Deadline = 3 * time.Second
	}
	f := New(o)
	f.backoff = retry.Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	f.stall = 300 * time.Millisecond
	return f
}

// script answers request n (0-based) with step(n, w, r); it counts requests.
type script struct {
	n    atomic.Int64
	step func(n int, w http.ResponseWriter, r *http.Request)
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.step(int(s.n.Add(1)-1), w, r)
}

var payload = bytes.Repeat([]byte("layer: 1\n"), 4000) // 36 kB, several reads

func serve(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}

func TestHTTPS(t *testing.T) {
	good := digest(payload)
	tests := []struct {
		name      string
		step      func(n int, w http.ResponseWriter, r *http.Request)
		want      string // sha256
		limit     int64
		deadline  time.Duration
		wantCode  string // "" = success
		wantFinal bool
		wantCalls int64
		wantMsg   []string
	}{
		{
			name: "ok with digest", want: good, wantCalls: 1,
			step: func(n int, w http.ResponseWriter, r *http.Request) { serve(w, payload) },
		},
		{
			name: "sha256 mismatch is final", want: strings.Repeat("ab", 32), wantCode: CodeSHA256Mismatch, wantFinal: true, wantCalls: 1,
			step:    func(n int, w http.ResponseWriter, r *http.Request) { serve(w, payload) },
			wantMsg: []string{"sha256 mismatch: expected " + strings.Repeat("ab", 32) + ", got " + good, "the sha256 in the config is wrong"},
		},
		{
			name: "503 then ok", wantCalls: 4,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n < 3 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				serve(w, payload)
			},
		},
		{
			name: "429 then ok", wantCalls: 2,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n < 1 {
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				serve(w, payload)
			},
		},
		{
			name: "404 is final", wantCode: "HTTP404", wantFinal: true, wantCalls: 1,
			step:    func(n int, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			wantMsg: []string{"HTTP 404 Not Found"},
		},
		{
			name: "500 until the deadline", wantCode: "HTTP500", deadline: 1500 * time.Millisecond,
			step:    func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			wantMsg: []string{"HTTP 500 Internal Server Error after ", " attempts in 1.5s"},
		},
		{
			name: "over the limit by Content-Length", limit: 100, wantCode: CodeTooLarge, wantFinal: true, wantCalls: 1,
			step:    func(n int, w http.ResponseWriter, r *http.Request) { serve(w, payload) },
			wantMsg: []string{"larger than the limit of 100 bytes"},
		},
		{
			name: "over the limit, chunked", limit: 100, wantCode: CodeTooLarge, wantFinal: true, wantCalls: 1,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				w.Write(payload[:80])
				w.(http.Flusher).Flush()
				w.Write(payload[80:])
			},
		},
		{
			name: "connection dropped mid-body, then ok", want: good, wantCalls: 2,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 0 {
					w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
					w.Write(payload[:1000])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
				serve(w, payload)
			},
		},
		{
			name: "stalled body, then ok", want: good, wantCalls: 2,
			step: func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 0 {
					w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
					w.Write(payload[:1000])
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
					return
				}
				serve(w, payload)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &script{step: tt.step}
			srv := newTLSServer(sc)
			defer srv.Close()
			var logs bytes.Buffer
			f := newTest(Options{HTTPClient: srv.Client(), Deadline: tt.deadline}, &logs)
			src := srv.URL + "/layers/base.yaml"
			got, err := f.Bytes(context.Background(), src, tt.want, tt.limit)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Bytes: %v", err)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("got %d bytes, want the payload", len(got))
				}
			} else {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("err = %T %v, want *fetch.Error", err, err)
				}
				if fe.Code != tt.wantCode || fe.Final != tt.wantFinal || fe.Source != src {
					t.Fatalf("Error = %+v, want code %s final %v", fe, tt.wantCode, tt.wantFinal)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("message %q lacks %q", err, m)
					}
				}
				if strings.Contains(err.Error(), "layer: 1") {
					t.Errorf("message quotes the content")
				}
			}
			if tt.wantCalls > 0 && (sc.n.Load() != tt.wantCalls || f.Requests() != tt.wantCalls) {
				t.Errorf("requests: server %d, counted %d, want %d", sc.n.Load(), f.Requests(), tt.wantCalls)
			}
			if strings.Contains(logs.String(), "layer: 1") {
				t.Errorf("log quotes the content")
			}
		})
	}
}

// newTLSServer is httptest.NewTLSServer without its log noise (aborted
// handshakes are part of the tests).
func newTLSServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

func TestUntrustedCertificateIsFinal(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, payload) }))
	defer srv.Close()
	f := newTest(Options{}, nil) // default client: the test CA is not trusted
	_, err := f.Bytes(context.Background(), srv.URL+"/x", "", 0)
	var fe *Error
	if !errors.As(err, &fe) || !fe.Final || fe.Attempts != 1 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v (%+v), want a final certificate error after one attempt", err, fe)
	}
}

func TestFileDownload(t *testing.T) {
	good := digest(payload)
	tests := []struct {
		name    string
		fail    bool
		want    string
		wantErr string
	}{
		{name: "streamed to a temp file", want: good},
		{name: "mismatch leaves no temp file", want: strings.Repeat("0", 64), wantErr: "sha256 mismatch"},
		{name: "404 leaves no temp file", fail: true, wantErr: "HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.fail {
					http.NotFound(w, r)
					return
				}
				serve(w, payload)
			}))
			defer srv.Close()
			dir := t.TempDir()
			f := newTest(Options{HTTPClient: srv.Client()}, nil)
			blob, err := f.File(context.Background(), srv.URL+"/pkg.tar", tt.want, dir)
			entries, _ := os.ReadDir(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if len(entries) != 0 {
					t.Fatalf("temp file left behind: %v", entries[0].Name())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(blob.Path)
			if !bytes.Equal(b, payload) || blob.Size != int64(len(payload)) || blob.SHA256 != good || filepath.Dir(blob.Path) != dir {
				t.Fatalf("blob %+v", blob)
			}
			if st, _ := os.Stat(blob.Path); st.Mode().Perm() != 0o600 {
				t.Fatalf("temp file mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestLocalFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "layer.yaml")
	if err := os.WriteFile(p, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newTest(Options{}, nil)
	tests := []struct {
		name, src, want string
		limit           int64
		wantErr         string
	}{
		{name: "read", src: "file://" + p, want: "sha256:" + strings.ToUpper(digest(payload))},
		{name: "missing", src: "file://" + filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "mismatch", src: "file://" + p, want: strings.Repeat("1", 64), wantErr: "sha256 mismatch"},
		{name: "limit", src: "file://" + p, limit: 10, wantErr: "larger than the limit of 10 bytes"},
		{name: "relative", src: "file://layer.yaml", wantErr: "file:///absolute/path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := f.Bytes(context.Background(), tt.src, tt.want, tt.limit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(b, payload) {
				t.Fatalf("Bytes = %d bytes, %v", len(b), err)
			}
		})
	}
	blob, err := f.File(context.Background(), "file://"+p, "", dir)
	if err != nil || blob.Size != int64(len(payload)) {
		t.Fatalf("File = %+v, %v", blob, err)
	}
	os.Remove(blob.Path)
	if f.Requests() != 0 {
		t.Fatal("file:// counted as requests")
	}
}

func TestBadInput(t *testing.T) {
	f := newTest(Options{}, nil)
	tests := []struct{ src, want, wantErr string }{
		{"ftp://host/x", "", "unsupported source"},
		{"s3://bucket", "", "s3://bucket/key"},
		{"s3:///key", "", "s3://bucket/key"},
		{"https://example.invalid/x", "xyz", "not 64 hex digits"},
		{"http://127.0.0.1:1/x", "", "plain http:// is only allowed with a sha256"},
		{"layer.yaml", "", "unsupported source"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := f.Bytes(context.Background(), tt.src, tt.want, 0)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if f.Requests() != 0 {
		t.Fatalf("%d requests for bad input", f.Requests())
	}
}

func TestSecretsInURLsAreNotShown(t *testing.T) {
	tests := []struct{ src, want string }{
		{"https://b.s3.amazonaws.com/k?X-Amz-Security-Token=SECRET&X-Amz-Signature=SECRET", "https://b.s3.amazonaws.com/k?X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"},
		{"https://user:SECRET@example.com/x", "https://REDACTED@example.com/x"},
		{"https://example.com/x#SECRET", "https://example.com/x#REDACTED"},
		{"s3://b/k", "s3://b/k"},
		{"https://example.com/%zz?SECRET", "https://(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := DisplaySource(tt.src); got != tt.want {
			t.Errorf("DisplaySource(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
	srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }))
	defer srv.Close()
	var logs bytes.Buffer
	f := newTest(Options{HTTPClient: srv.Client()}, &logs)
	for _, src := range []string{srv.URL + "/x?X-Amz-Security-Token=SECRET", "ftp://u:SECRET@h/x"} {
		_, err := f.Bytes(context.Background(), src, "", 0)
		if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(logs.String(), "SECRET") {
			t.Fatalf("err = %v; a secret in the URL was shown", err)
		}
	}
}

func TestPlainHTTPWithDigest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, payload) }))
	defer srv.Close()
	f := newTest(Options{}, nil)
	if _, err := f.Bytes(context.Background(), srv.URL+"/x", digest(payload), 0); err != nil {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	srv := newTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	f := newTest(Options{HTTPClient: srv.Client(), Deadline: time.Minute}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	start := time.Now()
	_, err := f.Bytes(ctx, srv.URL+"/x", "", 0)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v, want a prompt context.Canceled", err, time.Since(start))
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		want string
	}{
		{
			"access denied after the deadline",
			&Error{Source: "s3://b/k", Bucket: "b", Key: "k", Role: "web", Code: "AccessDenied", Attempts: 9, Deadline: 2 * time.Minute,
				detail: (&attemptError{code: "AccessDenied"}).summary()},
			`s3://b/k: access denied (AccessDenied) for role "web" after 9 attempts in 2m0s; check the role's policy allows s3:GetObject on arn:aws:s3:::b/k (and the bucket policy and KMS key, if any)`,
		},
		{
			"no such key",
			&Error{Source: "s3://b/k", Bucket: "b", Key: "k", Role: "web", Code: "NoSuchKey", Attempts: 1, Final: true,
				detail: (&attemptError{code: "NoSuchKey"}).summary()},
			`s3://b/k: no such key (NoSuchKey); check the key, and that the object was uploaded`,
		},
		{
			"slow down",
			&Error{Source: "s3://b/k", Code: "SlowDown", Attempts: 30, Deadline: time.Minute,
				detail: (&attemptError{code: "SlowDown", status: 503, msg: "Please reduce your request rate."}).summary()},
			`s3://b/k: SlowDown (HTTP 503): Please reduce your request rate. after 30 attempts in 1m0s`,
		},
		{
			"expired token",
			&Error{Source: "s3://b/k", Role: "web", Code: "ExpiredToken", Attempts: 3, Deadline: time.Minute,
				detail: (&attemptError{code: "ExpiredToken", status: 400, msg: "The provided token has expired."}).summary()},
			`s3://b/k: ExpiredToken (HTTP 400): The provided token has expired. for role "web" after 3 attempts in 1m0s; the instance's credentials were refused: check the instance profile and the clock`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Fatalf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
